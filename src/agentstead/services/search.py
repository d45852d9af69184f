"""Full-text search over a user's own threads and messages: the query's words become an FTS5
query (each word a quoted prefix, all of them required), the results carry their matches as
text segments (never markup)."""

from __future__ import annotations

import dataclasses
import re

from ..auth.access import Principal
from ..errors import Refused
from ..store import search as search_store
from ..store.db import Database

MAX_QUERY = 200       # characters
MAX_TERMS = 12
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclasses.dataclass(frozen=True)
class Results:
    threads: list[search_store.ThreadHit]
    messages: list[search_store.MessageHit]


def fts_query(text: str) -> str:
    """The user's words as an FTS5 query: every word required, each quoted, so no character
    of the input is FTS5 syntax ("AND", '"', '*', ':' and '-' are just text); the last word
    is a prefix (it may be still being typed), the others whole words: a prefix per word made
    two short words cost seconds over 100,000 messages (bench/search/run.py)."""
    words = _WORD.findall(text)[:MAX_TERMS]
    if not words:
        raise Refused(400, "bad_request", "query parameter q must contain a word")
    return " ".join('"%s"' % w for w in words[:-1]) + (" " if len(words) > 1 else "") + '"%s"*' % words[-1]


def segments(marked: str) -> list[dict]:
    """A snippet with its matches marked (store/search.py OPEN, CLOSE) as [{text, match}]."""
    out: list[dict] = []
    for i, part in enumerate(re.split("[%s%s]" % (search_store.OPEN, search_store.CLOSE), marked)):
        if part:
            out.append({"text": part, "match": i % 2 == 1})
    return out


class SearchService:
    def __init__(self, db: Database):
        self.db = db

    async def search(self, p: Principal, text: str, *, limit: int) -> Results:
        """The caller's threads (by title) and messages matching every word of text."""
        if len(text) > MAX_QUERY:
            raise Refused(400, "bad_request", f"query parameter q must be at most {MAX_QUERY} characters")
        match = fts_query(text)
        threads = await self.db.read(search_store.threads, p.user_id, match, limit=limit)
        messages = await self.db.read(search_store.messages, p.user_id, match, limit=limit)
        return Results(threads, messages)
