"""Random identifiers: tags, Call-IDs, Via branches and initial CSeq numbers.

They come from the system's cryptographic generator (``os.urandom``, what :mod:`secrets` uses,
drawn a few kilobytes at a time) because an attacker who can guess a tag or a branch can inject
requests into a dialog or a transaction (RFC 3261 §19.3 asks for at least 32 random bits; we
use 64 for tags, 128 for Call-IDs and 80 for branches).
"""

from __future__ import annotations

import os

from .message import BRANCH_MAGIC

#: random bytes are drawn from the system's generator (what ``secrets`` uses) this many at a
#: time: a call takes a dozen identifiers, and one system call each was a measurable share
_POOL_SIZE = 4096
_pool = b""
_used = 0


def _random_hex(size: int) -> str:
    global _pool, _used  # noqa: PLW0603 (the pool is this module's state)
    if _used + size > len(_pool):
        _pool, _used = os.urandom(_POOL_SIZE), 0
    start = _used
    _used += size
    return _pool[start:_used].hex()


def _forget_pool() -> None:
    global _pool, _used
    _pool, _used = b"", 0


# a forked child must not hand out the same identifiers as its parent
os.register_at_fork(after_in_child=_forget_pool)


def new_tag() -> str:
    """A From/To tag (RFC 3261 §19.3)."""
    return _random_hex(8)


def new_call_id(host: str | None = None) -> str:
    """A Call-ID, globally unique (RFC 3261 §8.1.1.4); ``host`` is appended as ``@host``."""
    local = _random_hex(16)
    return f"{local}@{host}" if host else local


def new_branch() -> str:
    """A Via branch carrying the RFC 3261 magic cookie, unique per transaction (§8.1.1.7)."""
    return BRANCH_MAGIC + _random_hex(10)


def new_cseq() -> int:
    """An initial CSeq number: below 2**31 (RFC 3261 §8.1.1.5), small enough to leave
    room for a long dialog's increments: 1 to 2**16, uniform (two bytes of the pool, not a
    system call of ``secrets.randbelow`` per number)."""
    return 1 + int(_random_hex(2), 16)
