"""The node's own per-carrier limits: a routing gateway's ``max_calls`` / ``max_cps`` counted per
call attempt.

Theory of operation. The node configures one admission key per routing gateway,
``"out:<gateway>"``, in its :class:`~signaling.sip.limits.AdmissionControl`. :class:`CarrierLimits`
sits in front of the router the node runs (the static router of the file, or the store router,
which keeps its own line counts across nodes) and speaks the same :class:`Router` protocol, so
the call controller needs nothing new:

* ``attempt_started`` — the call is about to send an INVITE to a carrier: take a slot (one
  concurrent call, one call attempt in the CPS window) on the carrier's key. Refused (at its
  ``max_calls``, or ``max_cps`` attempts in the last second) → answer False: the call skips the
  route without sending anything, exactly as when the router finds the lines taken (VOS3000:
  "a gateway at its line limit is skipped immediately", security-quality-timerouting-failover
  behaviour 57; architecture-billing-payments T36). Granted → the inner router is asked; its
  False gives the slot back at once.
* ``attempt_ended`` — the attempt failed, timed out or was given up for the next route: the
  slot is free again.
* ``call_ended`` — whatever is still held (the answered call's slot, an attempt cut short by
  the caller's CANCEL, a shutdown, a media failure) is freed. Every call reaches it once
  (``Call._finalize``), so no path keeps a slot.

A call holds at most one carrier slot at a time (one attempt at a time). The same carrier
tried again within an attempt (the INVITE re-sent after 422 Session Interval Too Small) keeps
its slot rather than counting a second attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from signaling.routing import Admission, CallRecord, InboundCall, PhoneContact, Route, Router
from signaling.sip.limits import AdmissionControl, AdmissionTicket, Rejection

__all__ = ["CarrierLimits", "carrier_key"]


def carrier_key(gateway: str) -> str:
    """The admission key of a routing gateway's limits."""
    return "out:" + gateway


class CarrierLimits:
    """A :class:`Router` taking a carrier slot per attempt in ``admission`` before asking
    ``inner``; any other attribute is the inner router's (``records``, ``password_for``...)."""

    def __init__(self, inner: Router, admission: AdmissionControl) -> None:
        self.inner = inner
        self.admission = admission
        #: the carrier slot each call holds: call id -> (gateway, ticket)
        self.held: dict[str, tuple[str, AdmissionTicket]] = {}

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 (whatever the inner router has)
        return getattr(self.inner, name)

    def _release(self, call_id: str, gateway: str | None = None) -> None:
        held = self.held.get(call_id)
        if held is None or (gateway is not None and held[0] != gateway):
            return
        del self.held[call_id]
        self.admission.release(held[1])

    # -- the Router protocol --------------------------------------------------------------------

    def admit(self, call: InboundCall, now: float) -> Admission:
        return self.inner.admit(call, now)

    def attempt_started(self, call_id: str, route: Route, now: float) -> bool | None:
        held = self.held.get(call_id)
        if held is not None and held[0] != route.gateway:
            self._release(call_id)  # a new carrier: the last one's attempt is over
        if call_id not in self.held:
            ticket = self.admission.admit([carrier_key(route.gateway)], now)
            if isinstance(ticket, Rejection):
                return False
            self.held[call_id] = (route.gateway, ticket)
        allowed = self.inner.attempt_started(call_id, route, now)
        if allowed is False:
            self._release(call_id)
        return allowed

    def attempt_progress(self, call_id: str, route: Route, status: int, now: float) -> None:
        self.inner.attempt_progress(call_id, route, status, now)

    def attempt_ended(self, call_id: str, route: Route, status: int, now: float) -> None:
        self._release(call_id, route.gateway)
        self.inner.attempt_ended(call_id, route, status, now)

    def call_answered(self, call_id: str, route: Route, now: float) -> None:
        self.inner.call_answered(call_id, route, now)

    def call_ended(self, record: CallRecord) -> None:
        self._release(record.call_id)
        self.inner.call_ended(record)

    def on_hangup_request(self, callback: Callable[[str, str], object]) -> None:
        self.inner.on_hangup_request(callback)

    def on_locate(self, lookup: Callable[[str], PhoneContact | None]) -> None:
        self.inner.on_locate(lookup)

    def may_register(self, username: str, aor: str, now: float) -> bool:
        return self.inner.may_register(username, aor, now)
