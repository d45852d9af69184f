"""Pure formatting helpers shared by the pages: ISO times, durations, counts, URL queries.

MicroPython has no datetime, so ISO 8601 UTC is parsed by hand."""


def _days_from_civil(y, m, d):
    # Howard Hinnant's algorithm: days since 1970-01-01 for a proleptic Gregorian date
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def day_of(ms):
    """'2026-11-25' for a time in ms since the epoch (UTC; the inverse of _days_from_civil)."""
    z = ms // 86400000 + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return "%04d-%02d-%02d" % (y + (m <= 2), m, d)


def iso_ms(s):
    """Milliseconds since the epoch for '2026-11-25T21:53:47.123456Z' (or +00:00); None if unreadable."""
    if not s or len(s) < 19:
        return None
    try:
        y, mo, d = int(s[0:4]), int(s[5:7]), int(s[8:10])
        hh, mm, ss = int(s[11:13]), int(s[14:16]), int(s[17:19])
    except ValueError:
        return None
    frac, rest = 0, s[19:]
    if rest.startswith("."):
        digits = ""
        for c in rest[1:]:
            if c.isdigit():
                digits += c
            else:
                break
        rest = rest[1 + len(digits):]
        frac = int((digits + "000")[:3]) if digits else 0
    offset = 0
    if rest and rest[0] in "+-" and len(rest) >= 6:
        try:
            offset = (int(rest[1:3]) * 60 + int(rest[4:6])) * (1 if rest[0] == "+" else -1)
        except ValueError:
            offset = 0
    days = _days_from_civil(y, mo, d)
    return ((days * 86400 + hh * 3600 + mm * 60 + ss) - offset * 60) * 1000 + frac


def duration(ms):
    """'850 ms', '12.3 s', '4 min 05 s', '2 h 03 min'."""
    if ms is None or ms < 0:
        return "—"
    if ms < 1000:
        return "%d ms" % ms
    s = ms / 1000
    if s < 60:
        return "%.1f s" % s
    s = int(s)
    if s < 3600:
        return "%d min %02d s" % (s // 60, s % 60)
    return "%d h %02d min" % (s // 3600, (s % 3600) // 60)


def run_duration(run, now_ms):
    """How long a run took (or has been going, for an active one)."""
    start = iso_ms(run.get("started_at"))
    if start is None:
        return None
    end = iso_ms(run.get("finished_at"))
    if end is None:
        if run.get("status") not in ("running", "waiting_for_input") or not now_ms:
            return None
        end = now_ms
    return max(0, end - start)


def count(n):
    """12 345 -> '12,345'; None -> '—'."""
    if n is None:
        return "—"
    s, out = str(int(n)), ""
    neg = s.startswith("-")
    s = s.lstrip("-")
    while len(s) > 3:
        out = "," + s[-3:] + out
        s = s[:-3]
    return ("-" if neg else "") + s + out


def short(n):
    """Compact axis labels: 950, 1.2k, 3.4M."""
    if n >= 1000000:
        return ("%.1fM" % (n / 1000000)).replace(".0M", "M")
    if n >= 1000:
        return ("%.1fk" % (n / 1000)).replace(".0k", "k")
    return str(int(n))


def when(s):
    """'2026-11-25 21:53' (UTC) from an ISO time; '' for None."""
    if not s:
        return ""
    return s[:10] + " " + s[11:16]


def quote(s):
    safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~"
    return "".join(c if c in safe else "".join("%%%02X" % b for b in c.encode()) for c in str(s))


def query(params):
    """'?a=1&b=x' from a dict, skipping empty values; '' when nothing is left."""
    parts = [quote(k) + "=" + quote(v) for k, v in sorted(params.items()) if v not in (None, "")]
    return ("?" + "&".join(parts)) if parts else ""
