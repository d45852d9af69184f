#!/usr/bin/env python3
"""Search over 100,000 messages (issue 22 budget: ≤ 50 ms p95).

Builds a migrated SQLite file (the app's migrations, so the FTS5 indexes and their triggers are
the real ones; rows written through the triggers, in batches) with --users users, each with
threads of --per-thread messages, --messages in all, text drawn from a Zipf-like vocabulary
(so common words match tens of thousands of rows). Then times `store/search.py` (what GET
/api/search runs: titles and messages, owner-scoped) for one user, per query kind, against the
baseline in the same run: the same user's messages scanned with LIKE '%word%' (no index).

Usage: .venv/bin/python bench/search/run.py [--messages 100000] [--users 10] [--rounds 30]
About a minute. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from agentstead.services.search import fts_query
from agentstead.store import search
from agentstead.store.migrate import migrate

WORDS = [f"w{i}" for i in range(5000)] + ["zeppelin", "dirigible", "capital", "paris", "kubernetes", "python"]


def build(path: Path, messages: int, users: int, per_thread: int, rng: random.Random) -> list[str]:
    migrate(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    owners = []
    weights = [1 / (i + 1) for i in range(len(WORDS))]
    now = "2026-12-05T00:00:00.000Z"
    for u in range(users):
        uid = str(uuid.uuid4())
        owners.append(uid)
        conn.execute("INSERT INTO users (id, email, role, created_at, updated_at) VALUES (?, ?, 'member', ?, ?)",
                     (uid, f"u{u}@example.org", now, now))
        conn.execute("INSERT INTO agents (id, owner_id, current_version, created_at, updated_at) "
                     "VALUES (?, ?, 1, ?, ?)", (uid, uid, now, now))
    made = 0
    while made < messages:
        owner = owners[made // per_thread % users]
        tid = str(uuid.uuid4())
        conn.execute("INSERT INTO threads (id, owner_id, agent_id, title, created_at, updated_at) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (tid, owner, owner, " ".join(rng.choices(WORDS, weights, k=4)),
                                                   now, now))
        rows = []
        for i in range(min(per_thread, messages - made)):
            text = " ".join(rng.choices(WORDS, weights, k=rng.randint(5, 60)))
            rows.append((str(uuid.uuid4()), tid, "user" if i % 2 == 0 else "assistant", text, now))
        conn.executemany("INSERT INTO messages (id, thread_id, role, content, created_at) VALUES (?, ?, ?, ?, ?)", rows)
        made += len(rows)
        if made % 20000 < per_thread:
            conn.commit()
    conn.commit()
    conn.close()
    return owners


def timed(fn, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def p95(v: list[float]) -> float:
    return sorted(v)[max(0, int(round(0.95 * len(v))) - 1)]


def main() -> int:
    p = argparse.ArgumentParser(description="Search over many messages")
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--users", type=int, default=10)
    p.add_argument("--per-thread", type=int, default=50)
    p.add_argument("--rounds", type=int, default=30)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentstead-bench-search-") as tmp:
        path = Path(tmp) / "s.db"
        t0 = time.perf_counter()
        owners = build(path, args.messages, args.users, args.per_thread, random.Random(22))
        built = time.perf_counter() - t0
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        me = owners[0]
        queries = {"common word (w0)": "w0", "rare word (zeppelin)": "zeppelin", "two words": "w1 w2",
                   "prefix (w12)": "w12", "no match": "nothingmatches"}
        print(f"# Search over {args.messages:,} messages ({args.users} users; {built:.1f} s to build)\n")
        print(f"SQLite {sqlite3.sqlite_version}; CPython {sys.version.split()[0]}; one user's view, "
              f"{args.rounds} rounds each, limit 20.\n")
        print("| query | matches (this user) | FTS5 p50 | FTS5 p95 | LIKE scan p50 | ratio p50 |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, q in queries.items():
            match = fts_query(q)
            word = q.split()[0]

            def fts():
                search.threads(conn, me, match, limit=20)
                search.messages(conn, me, match, limit=20)

            def like():
                conn.execute("SELECT m.seq FROM messages m JOIN threads t ON t.id = m.thread_id "
                             "WHERE t.owner_id = ? AND m.content LIKE ? LIMIT 20", (me, f"%{word}%")).fetchall()
            n = conn.execute("SELECT count(*) FROM messages_fts JOIN messages m ON m.seq = messages_fts.rowid "
                             "JOIN threads t ON t.id = m.thread_id WHERE messages_fts MATCH ? AND t.owner_id = ?",
                             (match, me)).fetchone()[0]
            a, b = timed(fts, args.rounds), timed(like, args.rounds)
            print(f"| {label} | {n:,} | {statistics.median(a):.1f} ms | {p95(a):.1f} ms | "
                  f"{statistics.median(b):.1f} ms | {statistics.median(a) / statistics.median(b):.2f} |")
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
