"""Random identifiers: tags, Call-IDs, Via branches and initial CSeq numbers.

They come from :mod:`secrets` because an attacker who can guess a tag or a branch can inject
requests into a dialog or a transaction (RFC 3261 §19.3 asks for at least 32 random bits; we
use 64 for tags, 128 for Call-IDs and 80 for branches).
"""

from __future__ import annotations

import secrets

from .message import BRANCH_MAGIC


def new_tag() -> str:
    """A From/To tag (RFC 3261 §19.3)."""
    return secrets.token_hex(8)


def new_call_id(host: str | None = None) -> str:
    """A Call-ID, globally unique (RFC 3261 §8.1.1.4); ``host`` is appended as ``@host``."""
    local = secrets.token_hex(16)
    return f"{local}@{host}" if host else local


def new_branch() -> str:
    """A Via branch carrying the RFC 3261 magic cookie, unique per transaction (§8.1.1.7)."""
    return BRANCH_MAGIC + secrets.token_hex(10)


def new_cseq() -> int:
    """An initial CSeq number: below 2**31 (RFC 3261 §8.1.1.5), small enough to leave
    room for a long dialog's increments."""
    return 1 + secrets.randbelow(2**16)
