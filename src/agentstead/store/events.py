"""SQL for the event log: one row per event, linked to each of its topics.

`events` holds an event once (seq, type, data, at); `event_topics` links it to
every topic it was published on by the topic's integer id (`topics`). A topic's
replay reads its links in seq order (primary key (topic, seq)) and joins the
events; retention deletes by seq. Deleting an event deletes its links (trigger,
migration 0006).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from typing import Iterable, Sequence

from .connection import inline


@dataclasses.dataclass(frozen=True)
class StoredEvent:
    seq: int
    topic: str
    type: str
    data: dict
    at: str


def _topic_ids(conn: sqlite3.Connection, names: Iterable[str]) -> dict[str, int]:
    """Ids of these topics, created when new (in the caller's write transaction)."""
    ids: dict[str, int] = {}
    for name in names:
        if name in ids:
            continue
        row = conn.execute("SELECT id FROM topics WHERE name = ?", (name,)).fetchone()
        if row is None:
            row = conn.execute("INSERT INTO topics (name) VALUES (?) RETURNING id", (name,)).fetchone()
        ids[name] = row[0]
    return ids


def append(conn: sqlite3.Connection, rows: Sequence[tuple[Sequence[str], str, str, str]]) -> int:
    """Insert (topics, type, data_json, at) events, each once, linked to its topics; returns
    the first seq. The writer calls it in every write's transaction (store/writer.py).

    One writer and AUTOINCREMENT make the batch's sequence numbers contiguous."""
    conn.executemany("INSERT INTO events (type, data, at) VALUES (?, ?, ?)", [r[1:] for r in rows])
    last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
    first = last - len(rows) + 1
    ids = _topic_ids(conn, (t for r in rows for t in r[0]))
    conn.executemany("INSERT INTO event_topics (topic, seq) VALUES (?, ?)",
                     [(ids[t], first + i) for i, r in enumerate(rows) for t in dict.fromkeys(r[0])])
    return first


def _event(row) -> StoredEvent:
    return StoredEvent(seq=row["seq"], topic=row["topic"], type=row["type"], data=json.loads(row["data"]), at=row["at"])


_SELECT = ("SELECT e.seq, t.name AS topic, e.type, e.data, e.at FROM topics t "
           "JOIN event_topics et ON et.topic = t.id JOIN events e ON e.seq = et.seq ")


def after(conn: sqlite3.Connection, topics: Iterable[str], seq: int, *, limit: int) -> list[StoredEvent]:
    """Events on exact topics with seq > `seq`, oldest first (an event on two of them comes
    once per topic)."""
    topics = list(topics)
    marks = ",".join("?" * len(topics))
    return [_event(r) for r in conn.execute(
        _SELECT + f"WHERE t.name IN ({marks}) AND et.seq > ? ORDER BY et.seq, t.name LIMIT ?",
        (*topics, seq, limit))]


def after_prefix(conn: sqlite3.Connection, prefix: str, seq: int, *, limit: int) -> list[StoredEvent]:
    """Events whose topic starts with `prefix` (pattern subscriptions), oldest first."""
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return [_event(r) for r in conn.execute(
        _SELECT + "WHERE t.name LIKE ? ESCAPE '\\' AND et.seq > ? ORDER BY et.seq, t.name LIMIT ?",
        (pattern, seq, limit))]


@inline
def head(conn: sqlite3.Connection) -> int:
    """The newest sequence number ever assigned (0 when none)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return row[0] if row else 0


@inline
def floor(conn: sqlite3.Connection) -> int:
    """Events at or below this seq may have been deleted by retention."""
    return conn.execute("SELECT value FROM event_log_meta WHERE key = 'floor'").fetchone()[0]


TOPIC_SWEEP = 10_000   # topics looked at per retention pass for being unused


def purge(conn: sqlite3.Connection, older_than: str, keep_max: int) -> int:
    """Delete events older than a time or beyond the newest `keep_max`; raise the floor;
    forget a slice of the topics no event links to any more (a cursor walks the table,
    so each pass does bounded work)."""
    cutoff = conn.execute("SELECT max(seq) FROM events WHERE at < ? OR seq <= "
                          "(SELECT coalesce(max(seq), 0) - ? FROM events)", (older_than, keep_max)).fetchone()[0]
    deleted = 0
    if cutoff is not None:
        conn.execute("DELETE FROM event_topics WHERE seq <= ?", (cutoff,))   # by range; the trigger then finds none
        deleted = conn.execute("DELETE FROM events WHERE seq <= ?", (cutoff,)).rowcount
        conn.execute("UPDATE event_log_meta SET value = max(value, ?) WHERE key = 'floor'", (cutoff,))
    start = conn.execute("SELECT value FROM event_log_meta WHERE key = 'topic_sweep'").fetchone()
    start = start[0] if start else 0
    ids = [r[0] for r in conn.execute("SELECT id FROM topics WHERE id > ? ORDER BY id LIMIT ?",
                                      (start, TOPIC_SWEEP))]
    if ids:
        conn.execute(f"DELETE FROM topics WHERE id IN ({','.join('?' * len(ids))}) AND NOT EXISTS "
                     "(SELECT 1 FROM event_topics WHERE topic = topics.id)", ids)
    conn.execute("INSERT INTO event_log_meta (key, value) VALUES ('topic_sweep', ?) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 (ids[-1] if len(ids) == TOPIC_SWEEP else 0,))
    return deleted


def compact_deltas(conn: sqlite3.Connection, *run_ids: str) -> None:
    """Drop finished runs' streamed deltas (every delta is on runs/{id}, whatever else it
    is on); their stored messages (message.created) carry the text."""
    marks = ",".join("?" * len(run_ids))
    conn.execute("DELETE FROM events WHERE type = 'message.delta' AND seq IN (SELECT et.seq FROM event_topics et "
                 f"WHERE et.topic IN (SELECT id FROM topics WHERE name IN ({marks})))",
                 [f"runs/{r}" for r in run_ids])


def between(conn: sqlite3.Connection, first: int, last: int, *, limit: int = 5000) -> list[tuple]:
    """Events with first <= seq <= last, each once with all its topics, oldest first:
    (seq, topics, type, data, at). What another instance committed that this one has not
    heard of (bus/sequence.py fills gaps with it)."""
    rows = conn.execute(
        "SELECT e.seq, group_concat(t.name, char(31)), e.type, e.data, e.at FROM events e "
        "JOIN event_topics et ON et.seq = e.seq JOIN topics t ON t.id = et.topic "
        "WHERE e.seq BETWEEN ? AND ? GROUP BY e.seq ORDER BY e.seq LIMIT ?", (first, last, limit))
    return [(r[0], tuple(r[1].split("\x1f")), r[2], json.loads(r[3]), r[4]) for r in rows]
