"""Sessions: which requests belong together, so they go where their prefix is already cached.

An agent resends its whole conversation on every turn. The turns of one session should land
on the replica, and the engine context, that holds the keys and values of that conversation;
anywhere else the prefill is paid again. The key is, first match wins:

    X-Session-Id header      set by clients that know their session
    metadata.user_id         what Claude Code sends (it names the session inside)
    `user` (OpenAI)          an end-user id
    the leading messages     a hash of the system prompt and the first user turn, which stay
                             the same for the whole of a conversation; only when they are long
                             enough (AUTO_MIN_CHARS) for a cached prefix to matter -- short
                             requests are better spread by load than kept together
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from seekgate.core.types import ChatRequest, Role

__all__ = ["AUTO_MIN_CHARS", "Affinity", "session_key"]

AUTO_MIN_CHARS = 2000


def session_key(request: ChatRequest, header: str | None) -> str | None:
    if header and header.strip():
        return header.strip()
    for key in ("user_id", "user"):
        if request.metadata.get(key):
            return request.metadata[key]
    digest = hashlib.sha256()
    chars = 0
    for message in request.messages:
        text = message.text
        chars += len(text)
        digest.update(message.role.value.encode() + b"\0" + text.encode() + b"\0")
        if message.role is Role.USER:
            return "auto-" + digest.hexdigest()[:16] if chars >= AUTO_MIN_CHARS else None
    return None


class Affinity:
    """Remembers where each of the most recent sessions went, forgetting the oldest."""

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._where: OrderedDict[str, int] = OrderedDict()

    def get(self, session: str) -> int | None:
        where = self._where.get(session)
        if where is not None:
            self._where.move_to_end(session)
        return where

    def set(self, session: str, where: int) -> None:
        self._where[session] = where
        self._where.move_to_end(session)
        if len(self._where) > self._limit:
            self._where.popitem(last=False)
