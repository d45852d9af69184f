"""A workflow definition laid out for drawing: steps as nodes in layers from the start
downwards, edges between them, every coordinate computed here. Pure (no DOM, no browser);
workflow_diagram.py draws the result as SVG.

The layout is layered (after Sugiyama): the edges that close a cycle are found by a depth-first
walk from the start and set aside (drawn, but not used for layering), each node's layer is its
longest path from a root, and a layer's nodes are ordered by the mean position of their
predecessors (one pass down), which keeps a branch's cases side by side under it and a parallel
group's members between the group and its join. A parallel group gets a join node of its own
(`<group>-join`, which no step name can be: names are identifiers). A target that names no step
becomes a `missing` node, so a definition with errors still draws what it can; anything that is
not a step is skipped. Every loop is bounded by the number of nodes and edges: nothing here can
hang on a cyclic or malformed definition."""

NODE_W, NODE_H, JOIN_H, DUMMY_W = 136, 44, 12, 8
GAP_X, GAP_Y, PAD = 16, 34, 12
KINDS = ("agent", "tool", "branch", "parallel", "approval")


class Node:
    __slots__ = ("id", "kind", "detail", "layer", "x", "y", "w", "h", "group", "start")

    def __init__(self, id, kind, detail="", group=None):
        self.id, self.kind, self.detail, self.group = id, kind, detail, group
        self.layer, self.x, self.y, self.w = 0, 0, 0, NODE_W
        self.h = JOIN_H if kind == "join" else NODE_H
        self.start = False

    def __repr__(self):
        return "Node(%r, %r, layer=%d)" % (self.id, self.kind, self.layer)


class Edge:
    __slots__ = ("src", "dst", "label", "back", "path", "via")

    def __init__(self, src, dst, label=""):
        self.src, self.dst, self.label, self.back, self.path, self.via = src, dst, label, False, "", []


class Layout:
    """nodes (by id, in layer order), edges, and the drawing's width and height."""

    def __init__(self, nodes, edges, width, height):
        self.nodes, self.edges, self.width, self.height = nodes, edges, width, height

    def node(self, id):
        for n in self.nodes:
            if n.id == id:
                return n
        return None


def _detail(kind, raw):
    if kind == "agent":
        return "agent"
    if kind == "tool":
        return "tool · " + str(raw.get("tool") or "?")
    if kind == "branch":
        return "branch"
    if kind == "parallel":
        return "parallel"
    if kind == "approval":
        return "approval"
    return "?"


def _targets(kind, raw):
    """(label, target) of the ways out of a step, as the definition names them."""
    out = []
    if kind == "branch":
        for i, case in enumerate(raw.get("cases") or ()):
            if isinstance(case, dict):
                out.append(("case %d" % (i + 1), case.get("next")))
        out.append(("default", raw.get("default")))
    elif kind == "approval":
        out.append(("approve", raw.get("on_approve")))
        out.append(("reject", raw.get("on_reject")))
    elif kind == "parallel":
        out.extend(("", m) for m in raw.get("steps") or ())
    else:
        out.append(("", raw.get("next")))
    return [(label, t) for label, t in out if isinstance(t, str) and t]


def _graph(definition):
    """Nodes and edges of a definition (dict), before layout."""
    steps = definition.get("steps") if isinstance(definition, dict) else None
    steps = steps if isinstance(steps, dict) else {}
    nodes, edges, group_of = {}, [], {}
    for name in sorted(steps):
        raw = steps[name]
        if not isinstance(raw, dict):
            continue
        kind = raw.get("kind") if raw.get("kind") in KINDS else "unknown"
        nodes[name] = Node(name, kind, _detail(kind, raw))
        if kind == "parallel":
            for m in raw.get("steps") or ():
                if isinstance(m, str) and m not in group_of:
                    group_of[m] = name
    for name in list(nodes):
        raw, node = steps[name], nodes[name]
        if node.kind == "parallel":
            join = Node(name + "-join", "join", "", name)
            nodes[join.id] = join
            nxt = raw.get("next")
            members = [t for _, t in _targets("parallel", raw)]
            edges.extend(Edge(name, m) for m in members)
            edges.extend(Edge(m, join.id) for m in members if group_of.get(m) == name)
            if not members:
                edges.append(Edge(name, join.id))
            if isinstance(nxt, str) and nxt:
                edges.append(Edge(join.id, nxt))
        else:
            edges.extend(Edge(name, t, label) for label, t in _targets(node.kind, raw))
    for name, group in group_of.items():
        if name in nodes and nodes[name].kind not in ("parallel", "join"):
            nodes[name].group = group
    for e in edges:
        if e.dst not in nodes:
            nodes[e.dst] = Node(e.dst, "missing", "no such step")
    start = definition.get("start") if isinstance(definition, dict) else None
    if isinstance(start, str) and start in nodes:
        nodes[start].start = True
    return nodes, edges, start if isinstance(start, str) else None


def _mark_back_edges(nodes, edges, start):
    """Set aside the edges that close a cycle (iterative DFS from start, then every other root)."""
    out = {}
    for e in edges:
        out.setdefault(e.src, []).append(e)
    colour = {n: 0 for n in nodes}
    roots = ([start] if start in nodes else []) + list(nodes)
    order = []
    for root in roots:
        if colour[root]:
            continue
        colour[root] = 1
        order.append(root)
        stack = [(root, iter(out.get(root, ())))]
        while stack:
            node, it = stack[-1]
            e = next(it, None)
            if e is None:
                colour[node] = 2
                stack.pop()
            elif colour[e.dst] == 1:
                e.back = True
            elif colour[e.dst] == 0:
                colour[e.dst] = 1
                order.append(e.dst)
                stack.append((e.dst, iter(out.get(e.dst, ()))))
    return order


def _layers(nodes, edges, order):
    """Longest-path layering over the forward edges (Kahn's algorithm: bounded, acyclic)."""
    preds, succs = {n: [] for n in nodes}, {n: [] for n in nodes}
    for e in edges:
        if not e.back and e.src != e.dst:
            preds[e.dst].append(e.src)
            succs[e.src].append(e.dst)
    waiting = {n: len(preds[n]) for n in nodes}
    ready = [n for n in order if not waiting[n]]
    i = 0
    while i < len(ready):
        n = ready[i]
        i += 1
        for m in succs[n]:
            nodes[m].layer = max(nodes[m].layer, nodes[n].layer + 1)
            waiting[m] -= 1
            if not waiting[m]:
                ready.append(m)
    return preds


def _dummies(nodes, edges, preds, order):
    """A way point in each layer a forward edge jumps over (so it bends round the steps there
    instead of through them); Edge.via lists them in order."""
    for i, e in enumerate(edges):
        e.via = []
        if e.back or e.src == e.dst:
            continue
        a, b = nodes[e.src], nodes[e.dst]
        prev = e.src
        for layer in range(a.layer + 1, b.layer):
            d = Node("\x00%d.%d" % (i, layer), "dummy")
            d.layer, d.w = layer, DUMMY_W
            nodes[d.id], preds[d.id] = d, [prev]
            order.append(d.id)
            e.via.append(d.id)
            prev = d.id
        if e.via:
            preds[e.dst] = [prev if p == e.src else p for p in preds[e.dst]]


def _order(nodes, preds, order):
    """Rows of node ids per layer: DFS order first, then by the mean column of predecessors."""
    rows = {}
    for n in order:
        rows.setdefault(nodes[n].layer, []).append(n)
    column = {}
    out = []
    for layer in sorted(rows):
        row = rows[layer]
        first = {n: i for i, n in enumerate(row)}

        def weight(n):
            ps = [column[p] for p in preds[n] if p in column]
            return (sum(ps) / len(ps) if ps else first[n], first[n])

        row = sorted(row, key=weight)
        for i, n in enumerate(row):
            column[n] = i - (len(row) - 1) / 2
        out.append(row)
    return out


def _place(nodes, rows):
    wide = [sum(nodes[n].w for n in row) + GAP_X * (len(row) - 1) for row in rows]
    width = max(wide + [NODE_W]) + 2 * PAD
    y = PAD
    for row, row_w in zip(rows, wide):
        x = (width - row_w) / 2
        tall = max(nodes[n].h for n in row)
        for n in row:
            node = nodes[n]
            node.x, node.y = int(x), int(y + (tall - node.h) / 2)
            x += node.w + GAP_X
        y += tall + GAP_Y
    return int(width), int(max(y - GAP_Y + PAD, 2 * PAD))


def _route(e, nodes, width):
    a, b = nodes[e.src], nodes[e.dst]
    if e.back or b.layer <= a.layer:
        # up (or to itself): leave by the right side, round the outside, come back into the right
        side = width - PAD // 2
        x1, y1, x2, y2 = a.x + a.w, a.y + a.h // 2, b.x + b.w, b.y + b.h // 2
        e.path = "M%d %d C%d %d %d %d %d %d" % (x1, y1, side, y1, side, y2, x2, y2)
        return
    points = [(a.x + a.w // 2, a.y + a.h)]
    for d in e.via:
        d = nodes[d]
        points += [(d.x + d.w // 2, d.y), (d.x + d.w // 2, d.y + d.h)]
    points.append((b.x + b.w // 2, b.y))
    path = "M%d %d" % points[0]
    for i in range(1, len(points)):
        (x1, y1), (x2, y2) = points[i - 1], points[i]
        if i % 2:       # between layers: a curve; through a way point's layer: straight down
            mid = (y1 + y2) // 2
            path += " C%d %d %d %d %d %d" % (x1, mid, x2, mid, x2, y2)
        else:
            path += " L%d %d" % (x2, y2)
    e.path = path


def layout(definition):
    """The Layout of a definition (any JSON value: what is not a step is left out)."""
    nodes, edges, start = _graph(definition)
    order = _mark_back_edges(nodes, edges, start)
    preds = _layers(nodes, edges, order)
    _dummies(nodes, edges, preds, order)
    rows = _order(nodes, preds, order)
    width, height = _place(nodes, rows)
    for e in edges:
        _route(e, nodes, width)
    return Layout([nodes[n] for row in rows for n in row if nodes[n].kind != "dummy"], edges, width, height)


def step_of(pointer):
    """The step a problem's JSON pointer is about (/definition/steps/<name>/..., /steps/<name>),
    or None."""
    parts = (pointer or "").split("/")
    if len(parts) > 1 and parts[1] == "definition":
        parts = parts[1:]
    if len(parts) > 2 and parts[1] == "steps" and parts[2]:
        return parts[2].replace("~1", "/").replace("~0", "~")
    return None
