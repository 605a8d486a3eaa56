"""The node's timers and the end of calls, split from node.py: one loop timer handle at the
earliest deadline of the transaction layer, the registrar, keep-alives and the node's own
:class:`Deadlines` (calls' timers, 2xx retransmissions until the ACK, forgetting ended calls);
and what an ended call leaves behind — forgotten at once when settled, kept LINGER_S otherwise.
A mixin of :class:`Node`; it uses only the attributes declared here.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from signaling.b2bua.call import Call
from signaling.b2bua.deadlines import Deadlines
from signaling.b2bua.ended import LINGER_S, EndedCalls
from signaling.b2bua.ended import settled as is_settled
from signaling.b2bua.inputs import CallState
from signaling.b2bua.stats import NodeStats
from signaling.observe.gateways import GatewayMeter
from signaling.routing import CallRecord
from signaling.sip.dialog import AckTimeout, Dialog, DialogId, Retransmit2xx
from signaling.sip.keepalive import NatKeepAlive
from signaling.sip.message import Response
from signaling.sip.registrar import Registrar
from signaling.sip.timer_queues import EarliestArmed
from signaling.sip.transaction import TransactionId, TransactionLayer
from signaling.sip.transport import SipTransport
from signaling.trace import Tracer

__all__ = ["TIMER_SLACK", "Schedule"]

log = logging.getLogger("softswitch.node")

#: timers (SIP retransmissions and timeouts, call timers) run up to this late, seconds: the
#: SIP timers are hundreds of milliseconds and more, and those due within this slack of each
#: other run together
TIMER_SLACK = 0.01


class Schedule:
    calls: dict[str, CallState]
    _lingering: dict[str, CallState]
    _loop: asyncio.AbstractEventLoop | None
    _timer: asyncio.Handle | None
    _timer_at: float
    _armed: EarliestArmed
    _pumping: int
    _dialogs: dict[DialogId, tuple[Call, str]]
    _awaiting_ack: dict[DialogId, Dialog]
    _by_transaction: dict[TransactionId, Call]
    _ended: EndedCalls
    deadlines: Deadlines
    layer: TransactionLayer
    registrar: Registrar
    keepalive: NatKeepAlive
    transport: SipTransport
    tracer: Tracer
    stats: NodeStats
    gateways: GatewayMeter
    ended_records: list[CallRecord]

    if TYPE_CHECKING:

        def now(self) -> float: ...

        def _pump(self) -> None: ...

        def post(self, call: Call, work: Callable[[], None]) -> None: ...

    def _note_awaiting_ack(self, response: Response) -> None:
        try:
            dialog_id = DialogId(response.call_id, response.to_tag or "", response.from_tag or "")
        except ValueError:
            return
        found = self._dialogs.get(dialog_id)
        if found is not None:
            call, leg = found
            owner = call.leg(leg)
            if owner is not None and owner.dialog is not None and owner.dialog.awaiting_ack:
                self._await_ack(dialog_id, owner.dialog)

    def _await_ack(self, dialog_id: DialogId, dialog: Dialog) -> None:
        """Follow ``dialog``'s 2xx retransmissions and ACK timeout until its ACK comes."""
        at = dialog.poll_timeout()
        if at is None:
            self._awaiting_ack.pop(dialog_id, None)
            return
        self._awaiting_ack[dialog_id] = dialog
        self.deadlines.set(("ack", dialog_id), at, partial(self._ack_due, dialog_id))

    def _acknowledged(self, call: Call, leg: str) -> None:
        """An ACK reached the dialog: its 2xx retransmission stops, and so does its timer."""
        owner = call.leg(leg)
        dialog = owner.dialog if owner is not None else None
        if dialog is not None and not dialog.awaiting_ack and dialog.id in self._awaiting_ack:
            del self._awaiting_ack[dialog.id]
            self.deadlines.cancel(("ack", dialog.id))

    def _ack_due(self, dialog_id: DialogId) -> None:
        """A 2xx not acknowledged yet: send it again, or end the call when the ACK is late."""
        dialog = self._awaiting_ack.pop(dialog_id, None)
        found = self._dialogs.get(dialog_id)
        if dialog is None or found is None:
            return
        call, leg = found
        now = self.now()
        for action in dialog.handle_timeout(now):
            if isinstance(action, Retransmit2xx):
                tid = call.transaction if leg == "a" else None
                self.layer.send_response(action.response, now, tid)
            elif isinstance(action, AckTimeout):
                self.post(call, call.on_ack_timeout)
        self._await_ack(dialog_id, dialog)

    def set_timer(self, call: Call, name: str, delay: float, action: Callable[[], None]) -> None:
        state = self.calls.get(call.call_id)
        if state is None or state.call is not call:
            return
        if name not in state.timer_names:
            state.timer_names.append(name)
        self.deadlines.set((state.serial, name), self.now() + delay, action, call)
        if not self._pumping:
            self._reschedule()

    def cancel_timer(self, call: Call, name: str) -> None:
        state = self.calls.get(call.call_id)
        if state is not None and state.call is call and name in state.timer_names:
            self.deadlines.cancel((state.serial, name))

    def call_ended(self, call: Call) -> None:
        state = self.calls.get(call.call_id)
        settled = False
        if state is not None and state.call is call:
            for name in state.timer_names:
                self.deadlines.cancel((state.serial, name))
            state.timer_names.clear()
            del self.calls[call.call_id]
            settled = is_settled(call)
            if settled:
                self._forget_settled(state)
            else:
                # still reachable for late inputs (a 2xx on a cancelled attempt is ACKed and
                # hung up, a relayed request's answer is passed back)
                self._lingering[call.call_id] = state
        self.stats.ended(call.record, call.answered)
        self.gateways.ingress_ended(call.record.ingress)
        self.ended_records.append(call.record)
        if len(self.ended_records) > 10_000:
            del self.ended_records[:1000]
        if not settled:
            # dialogs stay registered briefly so late retransmissions (BYE 200, 2xx) still match
            self.deadlines.set(("forget", call), self.now() + LINGER_S, partial(self._forget_dialogs, call))
        if not self._pumping:
            self._reschedule()

    def _forget_settled(self, state: CallState) -> None:
        """Forget an ended call with nothing left to do (``ended.settled``) at once: a late
        request in one of its dialogs finds none and is answered 481, as its terminated dialog
        would have; what is kept for LINGER_S is its Call-ID (the trace follows late messages)
        and the carrier dialog's last ACK, sent again if the carrier repeats its 2xx."""
        call = state.call
        for dialog_id in state.dialog_ids:
            if self._dialogs.get(dialog_id, (None, ""))[0] is call:
                del self._dialogs[dialog_id]
        for tid in [call.transaction, *state.transactions]:
            if self._by_transaction.get(tid) is call:
                del self._by_transaction[tid]
        b = call.b
        dialog = b.dialog if b is not None else None
        last_ack = dialog.last_ack if dialog is not None else None
        if b is None or dialog is None or last_ack is None:
            self._ended.add(self.now(), call.call_id, None, None)
        else:
            kept = (last_ack[0], last_ack[1], b.addr, b.transport)
            self._ended.add(self.now(), call.call_id, dialog.id, kept)

    def _expire_ended(self, now: float) -> None:
        for call_id in self._ended.expire(now):
            self.tracer.forget(call_id)

    def _forget_dialogs(self, call: Call) -> None:
        self.tracer.forget(call.call_id)
        state = self._lingering.get(call.call_id)
        if state is None or state.call is not call:
            return
        del self._lingering[call.call_id]
        for dialog_id in state.dialog_ids:
            if self._dialogs.get(dialog_id, (None, ""))[0] is call:
                del self._dialogs[dialog_id]
            if self._awaiting_ack.pop(dialog_id, None) is not None:
                self.deadlines.cancel(("ack", dialog_id))
        for tid in [call.transaction, *state.transactions]:
            if self._by_transaction.get(tid) is call:
                del self._by_transaction[tid]

    # -- timers -------------------------------------------------------------------------------------

    def _reschedule(self) -> None:
        """Arm the one timer handle at the earliest deadline of the transaction layer, the
        registrar, keep-alives and :attr:`deadlines` (calls' timers, 2xx retransmissions):
        four heap tops, whatever the number of calls. A later deadline keeps the earlier handle
        (it fires, finds nothing due, and re-arms).

        Asked after every input (eight times a call), the sources are not asked at all while a
        handle is armed and nothing was armed earlier than it since the last time: every source
        notes what it arms in the node's :class:`EarliestArmed`, and a source's next deadline
        can only come earlier by arming one (disarming makes it later: the handle fires early,
        finds nothing, and the full look follows, as when any handle fires)."""
        armed = self._armed
        if self._timer is not None and armed.at + TIMER_SLACK >= self._timer_at:
            armed.at = math.inf
            return
        armed.at = math.inf
        loop = self._loop
        if loop is None:
            return
        due = self.deadlines.next_deadline()
        ended = self._ended.next_deadline()
        for t in (self.layer.poll_timeout(), self.registrar.get_timer(), self.keepalive.get_timer(), ended):
            if t is not None and (due is None or t < due):
                due = t
        if due is None:
            return
        # a little late, so that deadlines close together (at hundreds of calls per second,
        # several a millisecond) are handled in one turn of the loop rather than one each
        due += TIMER_SLACK
        if self._timer is not None:
            if self._timer_at <= due:
                return
            self._timer.cancel()
        # the deadline is kept apart: a handle for a time already past is a plain Handle under
        # uvloop, without when()
        self._timer_at = due
        self._timer = loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        now = self.now()
        self._timer = None
        self.layer.handle_timeout(now)
        self.registrar.handle_timer(now)
        self._expire_ended(now)
        for ping in self.keepalive.handle_timer(now):
            self.transport.send(ping.payload, ping.addr, "UDP")
        self._pump()
        for action, owner in self.deadlines.pop_due(now):
            try:
                if owner is None:
                    action()
                else:  # a call's timer: one of that call's inputs (set_timer)
                    self.post(owner, action)  # type: ignore[arg-type]
            except Exception:
                self.stats.handler_errors += 1
                log.exception("timer failed")
        self._pump()
