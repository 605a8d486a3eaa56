"""The login verification challenge (reference CAP-13.3 "verification code after failed login
attempts", T75): a small arithmetic question, image-free so it works on any phone and in a
screen reader, generated and kept on the server.

A challenge is answered once: :meth:`Challenges.verify` removes it whatever the answer, so a
wrong guess costs a new challenge and a captured answer cannot be replayed. Unanswered
challenges expire after :data:`CHALLENGE_TTL` seconds, and at most :data:`MAX_PENDING` are kept
(the oldest are dropped first), so a client asking for challenges in a loop cannot grow memory.

This is a speed bump against password guessing, not a CAPTCHA against a determined program: the
account lockout of the authentication layer is what bounds guessing.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

#: Seconds a challenge may be answered in.
CHALLENGE_TTL = 300.0
#: Unanswered challenges kept at most.
MAX_PENDING = 10_000

_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


@dataclass(frozen=True, slots=True)
class Challenge:
    id: str
    question: str


class Challenges:
    """Pending challenges, thread-safe (the web manager may run handlers in worker threads)."""

    def __init__(self, ttl: float = CHALLENGE_TTL, max_pending: int = MAX_PENDING) -> None:
        self._ttl = ttl
        self._max = max_pending
        self._pending: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self, now: float) -> Challenge:
        a = 2 + secrets.randbelow(9)
        b = 1 + secrets.randbelow(10)
        if secrets.randbelow(2):
            question, answer = f"What is {_WORDS[a]} plus {b}?", a + b
        else:
            big = a + b
            question, answer = f"What is {big} minus {_WORDS[b]}?", a
        challenge_id = secrets.token_urlsafe(16)
        with self._lock:
            self._pending[challenge_id] = (answer, now + self._ttl)
            while len(self._pending) > self._max:
                self._pending.popitem(last=False)
        return Challenge(challenge_id, question)

    def verify(self, challenge_id: str, answer: str, now: float) -> bool:
        """Whether ``answer`` answers the challenge; the challenge is used up either way."""
        with self._lock:
            entry = self._pending.pop(challenge_id, None)
        if entry is None:
            return False
        expected, expires_at = entry
        if now > expires_at:
            return False
        text = answer.strip()
        return text.isdigit() and len(text) < 6 and int(text) == expected

    def __len__(self) -> int:
        return len(self._pending)
