"""Per-answer time and token usage: from the runs' snapshot over REST (started_at,
finished_at, prompt_tokens, completion_tokens) and from the thread's run.started and
run.succeeded events (their times, the tokens run.succeeded carries); drawn as one line below
a finished run's answer (transcript.run_block). The transcript keeps {run id: usage}."""


def _seconds(iso):
    """Seconds since the month began from 'YYYY-MM-DDTHH:MM:SS.fff…', or None: a run's length
    is a difference of two, and runs across a month's end are rare enough to show no time."""
    try:
        return int(iso[8:10]) * 86400 + int(iso[11:13]) * 3600 + int(iso[14:16]) * 60 + float(iso[17:].rstrip("Z")
                                                                                               .split("+")[0])
    except (TypeError, ValueError, IndexError):
        return None


def from_run(r):
    return {"started": r.get("started_at"), "finished": r.get("finished_at"),
            "prompt": r.get("prompt_tokens"), "completion": r.get("completion_tokens")}


def on_event(usage, run_id, kind, data, at):
    """usage after a run.started / run.succeeded of the thread (others leave it as it is)."""
    if kind == "run.started":
        return dict(usage, **{run_id: {"started": at}})
    if kind == "run.succeeded":
        u = dict(usage.get(run_id) or {})
        u.update(finished=at, prompt=data.get("prompt_tokens"), completion=data.get("completion_tokens"))
        return dict(usage, **{run_id: u})
    return usage


def line(u):
    """'2.4 s · 35 + 120 tokens' (what it took, prompt + completion), or None when unknown."""
    if not u:
        return None
    parts = []
    a, b = _seconds(u.get("started")), _seconds(u.get("finished"))
    if a is not None and b is not None and b >= a:
        parts.append("%.1f s" % (b - a))
    p, c = u.get("prompt"), u.get("completion")
    if isinstance(p, int) and isinstance(c, int) and (p or c):
        parts.append("%d + %d tokens" % (p, c))
    return " · ".join(parts) or None
