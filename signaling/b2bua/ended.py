"""What the node keeps of calls it has forgotten, for the seconds their late messages may still
come (docs/b2bua.md, "Ended calls"), sans-IO.

A call that ended with nothing left to do (:func:`settled`) is dropped by the node at once;
:class:`EndedCalls` then holds, for LINGER_S, its Call-ID (the debug trace follows its late
messages until then) and its carrier dialog's last ACK: a carrier that repeats its 2xx (our
ACK was lost) gets that ACK again, as the dialog would have sent it. Everything is kept as
plain tuples of strings, numbers and bytes, which cannot be part of a reference ring: they are
untracked as they are kept (``signaling/untracked.py``), so the tens of thousands of calls
ended within LINGER_S at several hundred calls per second add nothing to the cyclic collector's
passes (CPython would untrack them too, but only at a pass over their generation, one level of
nesting per pass). Deadlines are all LINGER_S after their call's end, so they come in order: a deque.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from signaling.sip.dialog import DialogId
from signaling.sip.message import Response
from signaling.sip.timer_queues import EarliestArmed
from signaling.untracked import untrack_tree

if TYPE_CHECKING:
    from signaling.b2bua.call import Call

__all__ = ["LINGER_S", "DialogKey", "EndedCalls", "KeptAck", "settled"]

#: how long an ended call still answers for its dialogs (late retransmissions of its last
#: messages: 64*T1 with the default T1), seconds
LINGER_S = 32.0

Addr = tuple[str, int]
#: an ended call's dialog, as (Call-ID, local tag, remote tag)
DialogKey = tuple[str, str, str]
#: a dialog's last ACK: CSeq number, wire form, where to and over what
KeptAck = tuple[int, bytes, Addr, str]


class EndedCalls:
    """Forgotten calls' Call-IDs and carrier ACKs, each for LINGER_S."""

    __slots__ = ("_acks", "_queue", "armed")

    def __init__(self, armed: EarliestArmed | None = None) -> None:
        #: where every deadline added is noted (shared with the node's other timer sources)
        self.armed = armed if armed is not None else EarliestArmed()
        #: (when to forget, Call-ID, its carrier dialog's key or None), oldest first
        self._queue: deque[tuple[float, str, DialogKey | None]] = deque()
        self._acks: dict[DialogKey, KeptAck] = {}

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, now: float, call_id: str, dialog: DialogId | None, ack: KeptAck | None) -> None:
        """Keep ``call_id`` and, when given, the ACK of its carrier ``dialog``, until
        ``now + LINGER_S``."""
        key: DialogKey | None = None
        if dialog is not None and ack is not None:
            key = (dialog.call_id, dialog.local_tag, dialog.remote_tag)
            self._acks[key] = untrack_tree(ack)
        # plain tuples: untracked now, not when a collection of their generation comes
        self._queue.append(untrack_tree((now + LINGER_S, call_id, key)))
        self.armed.note(now + LINGER_S)

    def next_deadline(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def expire(self, now: float) -> list[str]:
        """Forget what is due at ``now``; the Call-IDs forgotten (for the trace)."""
        queue = self._queue
        gone: list[str] = []
        while queue and queue[0][0] <= now:
            _, call_id, key = queue.popleft()
            gone.append(call_id)
            if key is not None:
                self._acks.pop(key, None)
        return gone

    def ack_for(self, dialog: DialogId, response: Response) -> KeptAck | None:
        """The ACK to send again for ``response``, a 2xx to the INVITE of a forgotten call's
        carrier dialog (the CSeq of the INVITE that ACK acknowledged); None for anything else."""
        kept = self._acks.get((dialog.call_id, dialog.local_tag, dialog.remote_tag))
        if kept is None or not 200 <= response.status < 300:
            return None
        try:
            number, method = response.cseq.number, response.cseq.method
        except ValueError:
            return None
        return kept if method == "INVITE" and number == kept[0] else None


def settled(call: Call) -> bool:
    """An ended call that nothing can still concern but the retransmissions the transaction
    layer and :class:`EndedCalls` answer: no attempt given up on (its 2xx would need ACK and
    BYE), no relayed request or session refresh awaiting its response, both dialogs terminated
    (a request in them is refused 481 whether or not the call is found) and none retransmitting
    a 2xx for its ACK."""
    if call.given_up or call.relayed or call.st.in_flight:
        return False
    for leg in (call.a, call.b):
        dialog = leg.dialog if leg is not None else None
        if dialog is not None and (not dialog.terminated or dialog.awaiting_ack):
            return False
    return True
