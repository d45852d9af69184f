// The JS half of Markdown rendering (frontend/src/markdown.py is the other): model text parsed by
// markdown-it (CommonMark + GFM tables and strikethrough; raw HTML off, so it stays text) into its
// flat token list, and fenced code tokenized by Prism, both handed to Python as JSON data. Nothing
// here touches the DOM or produces HTML: markdown.py builds the page's own virtual nodes from the
// tokens, choosing every tag and attribute itself. The build (frontend/build.py) puts this after
// markdown-it's and Prism's own files in assets/markdown.<hash>.js.
(function () {
  "use strict";
  const md = globalThis.markdownit({ html: false, linkify: false, typographer: false });
  const languages = (globalThis.Prism && globalThis.Prism.languages) || {};
  const ALIASES = { py: "python", js: "javascript", ts: "typescript", sh: "bash", shell: "bash",
                    zsh: "bash", yml: "yaml", html: "markup", xml: "markup", rs: "rust", golang: "go" };

  // Prism's tokens as [type, children]; a plain string stays a string.
  function tree(tokens) {
    return tokens.map((t) => typeof t === "string" ? t
      : [t.type, Array.isArray(t.content) ? tree(t.content) : tree([t.content])]);
  }

  function grammar(info) {
    const name = (info || "").trim().split(/\s+/)[0].toLowerCase();
    const lang = ALIASES[name] || name;
    const g = Object.prototype.hasOwnProperty.call(languages, lang) ? languages[lang] : null;
    return g && typeof g === "object" ? g : null;
  }

  // [type, tag, nesting, content, info, attrs, hidden, children, highlighted]
  function flat(tokens) {
    return tokens.map((t) => [t.type, t.tag, t.nesting, t.content, t.info, t.attrs, t.hidden,
      t.children ? flat(t.children) : null,
      t.type === "fence" && grammar(t.info) ? tree(globalThis.Prism.tokenize(t.content, grammar(t.info))) : null]);
  }

  globalThis.agentsteadMarkdown = (text) => JSON.stringify(flat(md.parse(String(text), {})));
})();
