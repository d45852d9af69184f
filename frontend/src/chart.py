"""Tokens used per day as a stacked bar chart in SVG, with a title and a text alternative
(the admin page's usage panel). Pure: rows in, virtual nodes out."""

from runtime import h
import fmt


def daily(usage, days, today_ms=None):
    """[(day, prompt, completion)] summed over users and models, oldest first, missing days as 0.
    Without today_ms the days are those present in the data."""
    totals = {}
    for row in usage:
        p, c = totals.get(row["day"], (0, 0))
        totals[row["day"]] = (p + (row.get("prompt_tokens") or 0), c + (row.get("completion_tokens") or 0))
    if today_ms is None:
        present = sorted(totals)
        if not present:
            return []
        first, last = fmt.iso_ms(present[0] + "T00:00:00Z"), fmt.iso_ms(present[-1] + "T00:00:00Z")
        if first is None or last is None:
            keys = present
        else:                                  # every day from the first to the last, gaps as 0
            keys = [fmt.day_of(first + i * 86400000) for i in range((last - first) // 86400000 + 1)]
    else:
        keys = [fmt.day_of(today_ms - i * 86400000) for i in range(days - 1, -1, -1)]
    return [(k,) + totals.get(k, (0, 0)) for k in keys]


def chart(points, width=640, height=220):
    """Stacked bars (prompt + completion tokens per day) as SVG, with a title and axis labels."""
    left, bottom, top = 48, 28, 10
    n = max(1, len(points))
    peak = max([p + c for _, p, c in points] + [1])
    plot_h, plot_w = height - bottom - top, width - left - 8
    bar_w = min(plot_w / n, 48.0)             # a few days do not make slabs
    total = sum(p + c for _, p, c in points)
    kids = [h("title", {"id": "usage-title"}, "Tokens per day"),
            h("desc", {"id": "usage-desc"}, "%s tokens over %d days; the highest day used %s." % (
                fmt.count(total), len(points), fmt.count(peak if total else 0)))]
    for i in range(3):                         # grid lines at 0, half and the peak
        value = peak * i / 2
        y = top + plot_h - plot_h * i / 2
        kids.append(h("line", {"x1": left, "x2": width - 8, "y1": "%.1f" % y, "y2": "%.1f" % y, "class": "grid"}))
        kids.append(h("text", {"x": left - 6, "y": "%.1f" % (y + 4), "text-anchor": "end", "class": "axis"},
                      fmt.short(value)))
    for i, (day, p, c) in enumerate(points):
        x = left + i * bar_w + 1
        w = "%.1f" % max(1.0, bar_w - 2)
        hp, hc = plot_h * p / peak, plot_h * c / peak
        base = top + plot_h
        kids.append(h("g", {"class": "bar"}, [
            h("title", {}, "%s: %s prompt, %s completion tokens" % (day, fmt.count(p), fmt.count(c))),
            h("rect", {"x": "%.1f" % x, "y": "%.1f" % (base - hp), "width": w, "height": "%.1f" % hp,
                       "class": "prompt"}),
            h("rect", {"x": "%.1f" % x, "y": "%.1f" % (base - hp - hc), "width": w, "height": "%.1f" % hc,
                       "class": "completion"}),
        ]))
    if points:
        for i in sorted(set((0, n // 2, n - 1))):
            kids.append(h("text", {"x": "%.1f" % (left + (i + 0.5) * bar_w), "y": height - 8,
                                   "text-anchor": "middle", "class": "axis"}, points[i][0][5:]))
    return h("svg", {"viewBox": "0 0 %d %d" % (width, height), "class": "chart", "role": "img",
                     "aria-labelledby": "usage-title usage-desc"}, kids)


def usage(rows, days):
    """The chart of /api/admin/usage rows (the days present, gaps as 0)."""
    return chart(daily(rows, days))
