// Builds a DOM subtree from the spec vdom.py's Applier writes (one call from Python instead of
// one per element, attribute and child: each call from WebAssembly into JavaScript converts its
// arguments and result, and a page's first render made hundreds). Shipped at the top of boot.mjs
// (frontend/build.py); frontend/tests/run.mjs loads it for the tests, which pass their own DOM.
// spec: JSON of node = "text" | [tag, [name, value, ...], [property, value, ...], handler id, [node, ...]]
// Returns every node created, in document order (the root first): Python picks an element out of
// it only when it needs that element again.
globalThis.agentsteadBuild = (doc, spec, svg) => {
  const made = [];
  const make = (node, svg) => {
    if (typeof node === "string") {
      const t = doc.createTextNode(node);
      made.push(t);
      return t;
    }
    const [tag, attrs, props, asid, children] = node;
    svg = svg || tag === "svg";
    const el = svg ? doc.createElementNS("http://www.w3.org/2000/svg", tag) : doc.createElement(tag);
    made.push(el);
    for (let i = 0; i < attrs.length; i += 2) el.setAttribute(attrs[i], attrs[i + 1]);
    for (let i = 0; i < props.length; i += 2) el[props[i]] = props[i + 1];
    if (asid) el.asid = asid;
    for (const child of children) el.appendChild(make(child, svg));
    return el;
  };
  make(JSON.parse(spec), svg);
  return made;
};
