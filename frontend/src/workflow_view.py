"""Zoom and pan of the workflow drawing: the part of it shown (the SVG's viewBox) as pure math,
the messages that change it, and the handlers that read the pointer, the wheel and the keys.

A view is None (the whole drawing fitted, the default) or (zoom, cx, cy): how many times closer
than fitted, and the point of the drawing at the middle, in the layout's own units
(workflow_graph.py). The SVG keeps `preserveAspectRatio="xMidYMid meet"`, so the browser fits the
viewBox to the box and the math here only needs the box's size in pixels to turn a drag or a
pointer's place into layout units. Pure apart from the handlers at the end (no DOM is read
anywhere else); tested under CPython and MicroPython (frontend/tests/test_workflow_view.py)."""

from runtime import Update

MAX_ZOOM = 16.0          # 16 × fitted: a 40-step chain fitted into a phone is still readable
STEP = 1.25              # one press of + or −
PAN_KEY = 0.1            # an arrow key pans a tenth of the part shown


def current(view, width, height):
    """(zoom, cx, cy) of a view (None: fitted)."""
    return view if view is not None else (1.0, width / 2, height / 2)


def settle(zoom, cx, cy, width, height):
    """A view kept in bounds: zoom in [1, MAX_ZOOM], the part shown inside the drawing;
    None when that is the whole drawing."""
    zoom = max(1.0, min(MAX_ZOOM, zoom))
    if zoom <= 1.0:
        return None
    half_w, half_h = width / zoom / 2, height / zoom / 2
    cx = max(half_w, min(width - half_w, cx))
    cy = max(half_h, min(height - half_h, cy))
    return (zoom, cx, cy)


def view_box(view, width, height):
    """(x, y, w, h) of the part of the drawing shown."""
    zoom, cx, cy = current(view, width, height)
    w, h = width / zoom, height / zoom
    return (cx - w / 2, cy - h / 2, w, h)


def view_box_attr(view, width, height):
    return " ".join(_num(v) for v in view_box(view, width, height))


def _num(v):
    r = round(v * 100) / 100
    return str(int(r)) if r == int(r) else str(r)


def scale(view, width, height, box_w, box_h):
    """Pixels per layout unit in a box of box_w × box_h pixels (the browser's meet fit)."""
    x, y, w, h = view_box(view, width, height)
    return min(box_w / w, box_h / h) if box_w > 0 and box_h > 0 else 1.0


def point_at(view, width, height, box_w, box_h, px, py):
    """The layout point under pixel (px, py) of the box (the viewBox centred in it, as meet draws it)."""
    x, y, w, h = view_box(view, width, height)
    s = scale(view, width, height, box_w, box_h)
    return (x + (px - (box_w - w * s) / 2) / s, y + (py - (box_h - h * s) / 2) / s)


def zoomed(view, width, height, factor, at=None):
    """factor × closer (or farther, factor < 1), keeping the layout point `at` where it is on the
    screen (the middle when None)."""
    zoom, cx, cy = current(view, width, height)
    new = max(1.0, min(MAX_ZOOM, zoom * factor))
    if at is not None:
        ax, ay = at
        cx, cy = ax + (cx - ax) * zoom / new, ay + (cy - ay) * zoom / new
    return settle(new, cx, cy, width, height)


def panned(view, width, height, dx, dy, box_w, box_h):
    """The drawing moved by (dx, dy) pixels, as a drag moves it."""
    zoom, cx, cy = current(view, width, height)
    s = scale(view, width, height, box_w, box_h)
    return settle(zoom, cx - dx / s, cy - dy / s, width, height)


# ---------------------------------------------------------------- messages (the page's model: view, drag)

on = Update()


@on("factor width height")
def Zoom(model, factor, width, height):
    return model.but(view=zoomed(model.view, width, height, factor))


@on("factor width height at")
def ZoomAt(model, factor, width, height, at):
    return model.but(view=zoomed(model.view, width, height, factor, at))


@on()
def Fit(model):
    return model.but(view=None)


@on("dx dy width height box")
def PanBy(model, dx, dy, width, height, box):
    return model.but(view=panned(model.view, width, height, dx, dy, box[0], box[1]))


@on("x y")
def DragStart(model, x, y):
    return model.but(drag=(x, y), dragged=False)


@on("x y width height box")
def DragTo(model, x, y, width, height, box):
    if model.drag is None:
        return model
    dx, dy = x - model.drag[0], y - model.drag[1]
    moved = model.dragged or abs(dx) + abs(dy) > 3
    return model.but(drag=(x, y), dragged=moved, view=panned(model.view, width, height, dx, dy, box[0], box[1]))


@on("step")
def ClickStep(model, step):
    """A click on a step shows its details, unless it ended a drag."""
    return model.but(dragged=False) if model.dragged else model.but(selected=step)


@on()
def DragEnd(model):
    return model.but(drag=None) if model.drag is not None else model


# ---------------------------------------------------------------- handlers (read the event, give a message)

def _box(ev):
    """(element, its rect) of the drawing the event happened in."""
    svg = ev.target.closest("svg")
    return svg, svg.getBoundingClientRect() if svg is not None else None


def _size(ev):
    """The drawing's box in pixels, from an event on it or on the canvas around it."""
    try:
        t = ev.target
        svg = t.closest("svg") or t.querySelector("svg")
        r = svg.getBoundingClientRect()
        return (r.width, r.height)
    except Exception:   # no DOM (tests) or no drawing: any box pans by a tenth of it
        return (600, 400)


def on_key(ev, width, height):
    """+ / = zoom in, − zoom out, 0 fits, arrows pan; None for any other key."""
    k = ev.key
    if getattr(ev, "ctrlKey", False) or getattr(ev, "metaKey", False) or getattr(ev, "altKey", False):
        return None
    if k in ("+", "="):
        msg = Zoom(STEP, width, height)
    elif k in ("-", "_"):
        msg = Zoom(1 / STEP, width, height)
    elif k == "0":
        msg = Fit()
    elif k in ("ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"):
        box = _size(ev)
        dx = {"ArrowLeft": 1, "ArrowRight": -1}.get(k, 0) * box[0] * PAN_KEY
        dy = {"ArrowUp": 1, "ArrowDown": -1}.get(k, 0) * box[1] * PAN_KEY
        msg = PanBy(dx, dy, width, height, box)
    else:
        return None
    ev.preventDefault()
    return msg


def handlers(width, height):
    """The drawing's pointer and wheel handlers (a drag pans, ctrl/⌘ + wheel zooms at the pointer)."""
    def down(ev):
        if ev.button != 0:
            return None
        return DragStart(ev.clientX, ev.clientY)

    def move(ev):
        if not ev.buttons:
            return None        # a hover, not a drag: nothing to draw again
        _, r = _box(ev)
        return DragTo(ev.clientX, ev.clientY, width, height, (r.width, r.height)) if r is not None else None

    def wheel(ev):
        if not (ev.ctrlKey or ev.metaKey):
            return None        # the page scrolls as usual
        ev.preventDefault()
        _, r = _box(ev)
        if r is None:
            return None
        return WheelZoom(ev.deltaY, ev.clientX - r.left, ev.clientY - r.top, r.width, r.height, width, height)

    return {"onpointerdown": down, "onpointermove": move, "onpointerup": lambda ev: DragEnd(),
            "onpointercancel": lambda ev: DragEnd(), "onwheel": wheel}


@on("delta px py box_w box_h width height")
def WheelZoom(model, delta, px, py, box_w, box_h, width, height):
    at = point_at(model.view, width, height, box_w, box_h, px, py)
    factor = STEP if delta < 0 else 1 / STEP
    return model.but(view=zoomed(model.view, width, height, factor, at))
