"""SQL for runs: their rows, statuses and leases."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

from ..timeutil import now_iso
from .connection import inline

ACTIVE = ("queued", "running", "waiting_for_input")
FINISHED = ("succeeded", "failed", "cancelled")
INTERRUPTED = ("interrupted", "the server stopped while this run was running; resume it")
# Several instances: one stopping gracefully hands its runs to the others (runner/instances.py).
HANDED_OVER = ("handed_over", "the instance running this run stopped; another instance resumes it")
ORPHANED = ("interrupted", "the run's task stopped without finishing it (its lease ran out); resume it")
QUEUE_PAGE = 500   # queued runs the scheduler reads at a time

Lease = tuple[str, str]   # (instance id, lease_until): who runs a running run, and until when at least


@dataclasses.dataclass(frozen=True)
class Run:
    """A chat run (thread, agent, input message, model) or a workflow run
    (workflow version, input, output, pinned agent versions); `kind` says which."""
    id: str
    owner_id: str
    status: str
    created_at: str
    kind: str = "chat"
    thread_id: str | None = None
    agent_id: str | None = None
    agent_version: int | None = None
    input_message_id: str | None = None
    model: str | None = None
    workflow_id: str | None = None
    workflow_version: int | None = None
    input: dict | None = None
    output: dict | None = None
    pins: dict | None = None
    error_code: str | None = None
    error_message: str | None = None
    waiting_prompt: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    started_at: str | None = None
    finished_at: str | None = None


_FIELDS = tuple(f.name for f in dataclasses.fields(Run))
_COLUMNS = ", ".join(_FIELDS)
_JSON = ("input", "output", "pins")


def _run(row: sqlite3.Row) -> Run:
    """A run from its row, by column name."""
    values = dict(zip(row.keys(), row))
    for name in _JSON:
        if values[name] is not None:
            values[name] = json.loads(values[name])
    return Run(**values)


def create(conn: sqlite3.Connection, run: Run) -> None:
    values = dataclasses.asdict(run)
    for name in _JSON:
        if values[name] is not None:
            values[name] = json.dumps(values[name])
    conn.execute(f"INSERT INTO runs ({_COLUMNS}) VALUES ({', '.join(':' + f for f in _FIELDS)})", values)


@inline
def get(conn: sqlite3.Connection, run_id: str) -> Run | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
    return _run(row) if row else None


@inline
def get_owned(conn: sqlite3.Connection, run_id: str, owner_id: str) -> Run | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM runs WHERE id = ? AND owner_id = ?", (run_id, owner_id)).fetchone()
    return _run(row) if row else None


def status_of(conn: sqlite3.Connection, run_id: str) -> str | None:
    row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    return row[0] if row else None


def latest_of_thread(conn: sqlite3.Connection, thread_id: str) -> Run | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM runs WHERE thread_id = ? ORDER BY created_at DESC LIMIT 1",
                       (thread_id,)).fetchone()
    return _run(row) if row else None


def list_owned(conn: sqlite3.Connection, owner_id: str, *, limit: int, before: str | None = None,
               status: str | None = None, agent_id: str | None = None, thread_id: str | None = None,
               kind: str | None = None, workflow_id: str | None = None) -> list[Run]:
    sql, args = f"SELECT {_COLUMNS} FROM runs WHERE owner_id = ?", [owner_id]
    for clause, value in (("status = ?", status), ("agent_id = ?", agent_id), ("thread_id = ?", thread_id),
                          ("kind = ?", kind), ("workflow_id = ?", workflow_id), ("created_at < ?", before)):
        if value is not None:
            sql += f" AND {clause}"
            args.append(value)
    return [_run(r) for r in conn.execute(sql + " ORDER BY created_at DESC LIMIT ?", (*args, limit))]


def queued(conn: sqlite3.Connection, limit: int = QUEUE_PAGE) -> list[Run]:
    return [_run(r) for r in conn.execute(
        f"SELECT {_COLUMNS} FROM runs WHERE status = 'queued' ORDER BY created_at LIMIT ?", (limit,))]


def set_status(conn: sqlite3.Connection, run_id: str, status: str, *, error: tuple[str, str] | None = None,
               waiting_prompt: str | None = None, started: bool = False, finished: bool = False,
               lease: Lease | None = None) -> None:
    """A status change; `lease` (given when the run starts running here) names this process
    and the time until which it vouches for the run's task."""
    now = now_iso()
    conn.execute("UPDATE runs SET status = ?, error_code = ?, error_message = ?, waiting_prompt = ?, "
                 "started_at = CASE WHEN ? THEN coalesce(started_at, ?) ELSE started_at END, "
                 "finished_at = CASE WHEN ? THEN ? ELSE finished_at END, "
                 "owner_instance = coalesce(?, owner_instance), lease_until = coalesce(?, lease_until) WHERE id = ?",
                 (status, error[0] if error else None, error[1] if error else None, waiting_prompt,
                  int(started), now, int(finished), now, lease[0] if lease else None, lease[1] if lease else None,
                  run_id))


def set_output(conn: sqlite3.Connection, run_id: str, output: dict) -> None:
    conn.execute("UPDATE runs SET output = ? WHERE id = ?", (json.dumps(output, default=str), run_id))


def renew_leases(conn: sqlite3.Connection, run_ids: list[str], lease: Lease) -> None:
    """The runs this process has a task (or an unwritten ending) for: still vouched for."""
    for i in range(0, len(run_ids), 500):
        chunk = run_ids[i:i + 500]
        conn.execute(f"UPDATE runs SET owner_instance = ?, lease_until = ? WHERE status = 'running' "
                     f"AND id IN ({','.join('?' * len(chunk))})", (*lease, *chunk))


def unleased(conn: sqlite3.Connection, now: str, limit: int = 100) -> list[Run]:
    """Running rows nobody vouches for any more (their lease ran out, or they never had one)."""
    return [_run(r) for r in conn.execute(
        f"SELECT {_COLUMNS} FROM runs WHERE status = 'running' AND (lease_until IS NULL OR lease_until < ?) "
        "ORDER BY created_at LIMIT ?", (now, limit))]


def _unfinished_work(conn: sqlite3.Connection, where: str, args: tuple, now: str) -> None:
    """A run's tool call in flight becomes unverified, its running steps interrupted."""
    conn.execute(f"UPDATE tool_calls SET status = 'unverified' WHERE status = 'started' AND {where}", args)
    conn.execute(f"UPDATE run_steps SET status = 'interrupted', finished_at = ? "
                 f"WHERE status IN ('running', 'retrying') AND {where}", (now, *args))


def interrupt_unleased(conn: sqlite3.Connection, run_id: str, now: str) -> bool:
    """A running row whose lease (still) ran out becomes interrupted, as at startup. False
    when it finished, or its lease was renewed, meanwhile."""
    changed = conn.execute("UPDATE runs SET status = 'interrupted', error_code = ?, error_message = ? "
                           "WHERE id = ? AND status = 'running' AND (lease_until IS NULL OR lease_until < ?)",
                           (*ORPHANED, run_id, now)).rowcount
    if changed:
        _unfinished_work(conn, "run_id = ?", (run_id,), now)
    return bool(changed)


def interrupt_running(conn: sqlite3.Connection) -> list[Run]:
    """At startup: runs the rows say were running did not finish; they become interrupted."""
    runs = [_run(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM runs WHERE status = 'running'")]
    conn.execute("UPDATE runs SET status = 'interrupted', error_code = ?, error_message = ? WHERE status = 'running'",
                 INTERRUPTED)
    _unfinished_work(conn, "1 = ?", (1,), now_iso())
    return runs


def running_counts(conn: sqlite3.Connection, owner_id: str) -> tuple[int, int]:
    """Runs running now on every instance, and this owner's (several instances: the limits
    are counted from the rows, in the start transaction, which BEGIN IMMEDIATE serialises)."""
    row = conn.execute("SELECT count(*), coalesce(sum(owner_id = ?), 0) FROM runs WHERE status = 'running'",
                       (owner_id,)).fetchone()
    return row[0], row[1]


def interrupt_running_of(conn: sqlite3.Connection, instance_prefix: str) -> list[Run]:
    """At the startup of one of several instances: only the runs its previous life (the same
    instance name) left running; the others' runs are theirs, or the watchdog's."""
    where, args = "status = 'running' AND owner_instance LIKE ? ESCAPE '\\'", (
        instance_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",)
    runs = [_run(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM runs WHERE {where}", args)]
    for run in runs:
        conn.execute("UPDATE runs SET status = 'interrupted', error_code = ?, error_message = ? WHERE id = ?",
                     (*INTERRUPTED, run.id))
        _unfinished_work(conn, "run_id = ?", (run.id,), now_iso())
    return runs


def answered_by(conn: sqlite3.Connection, run_ids: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """{run id: (agent id, model)} of the given chat runs: who wrote a page of a thread's replies."""
    out: dict[str, tuple[str | None, str | None]] = {}
    ids = sorted(set(run_ids))
    for at in range(0, len(ids), 500):       # SQLite's bound-parameter limit, with room to spare
        part = ids[at:at + 500]
        rows = conn.execute(f"SELECT id, agent_id, model FROM runs WHERE id IN ({', '.join('?' * len(part))})",
                            part).fetchall()
        out.update({r["id"]: (r["agent_id"], r["model"]) for r in rows})
    return out
