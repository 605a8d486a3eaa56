"""The node: SIP transport, transaction layer, calls, media control and timers on one loop.

This is the adapter around the sans-IO pieces: bytes from :mod:`signaling.sip.transport` are
parsed (a malformed request gets its error response statelessly, a malformed response is
dropped), fed to the :class:`TransactionLayer` with the loop's time, and the layer's events are
dispatched — a new INVITE to a new :class:`Call`, in-dialog requests and responses to the call
owning the dialog or transaction, OPTIONS and REGISTER answered here. One timer handle follows
the layer's and the dialogs' next deadlines.

The node is assembled from mixins, one module each: :mod:`~signaling.b2bua.dispatch` (what
arrives, and the layer's events), :mod:`~signaling.b2bua.intake` (new calls, admission, the
overload guard's samples), :mod:`~signaling.b2bua.inputs` (each call's inputs in order),
:mod:`~signaling.b2bua.schedule` (the loop timer, 2xx retransmissions, ended calls) and
:mod:`~signaling.b2bua.operations` (defence glue, gateway probes, counts). This module holds the
node's state, its lifecycle and the rest of the call host interface.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from signaling.b2bua.call import Call, MediaPort, parse_dtmf_info
from signaling.b2bua.carrier_limits import CarrierLimits, carrier_key
from signaling.b2bua.deadlines import Deadlines
from signaling.b2bua.dispatch import ALLOW, DTMF_INFO_TYPES, Dispatch
from signaling.b2bua.ended import EndedCalls
from signaling.b2bua.inputs import CallInputs, CallState
from signaling.b2bua.intake import NODE_KEY, SAMPLE_PERIOD, Intake
from signaling.b2bua.operations import Operations
from signaling.b2bua.schedule import TIMER_SLACK, Schedule
from signaling.b2bua.settings import Settings
from signaling.b2bua.stats import GatewayProber, NodeStats
from signaling.config import Config
from signaling.media.control import MediaNotice
from signaling.observe.gateways import GatewayMeter, MeteredRouter
from signaling.routing import CallRecord, PhoneContact, Route, Router
from signaling.sip.auth import DigestChallenger, Password
from signaling.sip.defence import Defence
from signaling.sip.dialog import Dialog, DialogId
from signaling.sip.identity import CallerPool
from signaling.sip.ids import new_branch
from signaling.sip.keepalive import KeepAliveConfig, NatKeepAlive
from signaling.sip.limits import AdmissionControl, KeyLimits, OverloadGuard, RateMeter
from signaling.sip.message import Request, Response, SipUri, Via
from signaling.sip.registrar import Registrar
from signaling.sip.timer_queues import EarliestArmed
from signaling.sip.timers import TimerConfig
from signaling.sip.transaction import TransactionId, TransactionLayer
from signaling.sip.transport import SipTransport, client_context, server_context
from signaling.trace import Tracer, TraceSettings, sip_log

log = logging.getLogger("softswitch.node")

Addr = tuple[str, int]
#: calls per second are measured over this window, seconds
CPS_WINDOW = 10.0
#: both legs of a call on the default media interface
NO_INTERFACES: tuple[None, None] = (None, None)


class Node(Dispatch, Intake, CallInputs, Schedule, Operations, Settings):
    """A running B2BUA node."""

    #: the IPs a routing gateway may send from (``source_ip``), each to the local IP of the
    #: socket it uses: None for the main listener's, else the IP (docs/b2bua.md "Local IPs")
    sources: dict[str, str | None]
    #: (gateway, source_ip) outside ``sources``, already logged (once each)
    _bad_sources: set[tuple[str, str]]

    def __init__(self, config: Config, media: MediaPort, router: Router) -> None:
        self.config = config
        self.parameters: dict[str, Any] = dict(config.parameters)
        self.media_port = media
        #: per-gateway lines, ASR, ACD, PDD (metrics, alarms), fed through the router interface
        self.gateways = GatewayMeter.from_parameters(self.parameters)
        #: CPS and concurrency per mapping gateway ("in:") and routing gateway ("out:")
        self.admission = AdmissionControl()
        # a carrier's slot is taken per attempt (CarrierLimits), before the router is asked
        self.router: Router = MeteredRouter(
            CarrierLimits(router, self.admission), self.gateways, self._attempt_probe, self._record_of
        )
        self.stats = NodeStats()
        self.cps = RateMeter(window_s=CPS_WINDOW, slots=10)
        #: the scanner defence, consulted before anything is parsed
        self.defence = Defence(config.defence)
        #: the earliest deadline armed by any of the node's timer sources since the loop timer was
        #: last checked (``Schedule._reschedule``): shared by all of them
        self._armed = EarliestArmed()
        self.layer = TransactionLayer(TimerConfig.from_parameters(self.parameters), armed=self._armed)
        self.transport = SipTransport(self._on_data, dscp=int(self.parameters["SS_QOS_SIGNAL"]))
        self._configure_admission(config)
        p = self.parameters
        self.keepalive = NatKeepAlive(KeepAliveConfig.from_parameters(p), armed=self._armed)
        # bindings are keyed by the To URI's user alone: phones are found by number
        self.registrar = Registrar(
            keepalive=self.keepalive, aor_key=_aor_user, authorize=self._may_register, armed=self._armed
        )
        self._passwords = {gw.username: gw.password for gw in config.mapping_gateways if gw.username}
        self.auth = DigestChallenger(
            realm=config.sip_advertise or "softswitch",
            secret=secrets.token_bytes(32),
            lookup=self._credentials,
        )
        #: answers new requests with a stateless 503 + Retry-After while the loop is overloaded
        self.overload = OverloadGuard(config.overload)
        self._sample_at = (0.0, 0.0, 0)  # (wall, thread CPU, messages) at the last sample
        self._messages = 0
        self._pools: dict[str, CallerPool] = {}
        self._contacts: dict[str, str] = {}
        self._raw: tuple[bytes, Addr, str] | None = None
        self.calls: dict[str, CallState] = {}
        #: ended calls that may still have work (an attempt given up on that may yet answer,
        #: a relayed request or a refresh awaiting its response, a 2xx awaiting its ACK, a
        #: dialog still up): kept whole for LINGER_S
        self._lingering: dict[str, CallState] = {}
        #: every other ended call is forgotten at once, leaving its Call-ID and its carrier
        #: dialog's last ACK for LINGER_S, as plain tuples (signaling/b2bua/ended.py)
        self._ended = EndedCalls(self._armed)
        self._by_transaction: dict[TransactionId, Call] = {}
        self._dialogs: dict[DialogId, tuple[Call, str]] = {}
        #: dialogs retransmitting a 2xx until the ACK comes: the only ones with a dialog timer
        self._awaiting_ack: dict[DialogId, Dialog] = {}
        #: OPTIONS probes toward routing gateways in flight
        self.prober = GatewayProber(self.gateways)
        #: the calls' timers, 2xx retransmissions and forgetting ended calls, in one heap
        self.deadlines = Deadlines(self._armed)
        self._serials = itertools.count(1)
        #: the one loop timer (at the earliest deadline of the layer, the registrar, the
        #: keep-alives and ``deadlines``) and when it is due
        self._timer: asyncio.Handle | None = None
        self._timer_at = 0.0
        #: pumps running (nested when a call's input runs inside the pump that delivered it)
        self._pumping = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.local: Addr = ("127.0.0.1", 0)
        self.transport_open = False
        self.advertise: str | None = config.sip_advertise
        self.sources, self._bad_sources = {}, set()  # filled by start()
        self.ended_records: list[CallRecord] = []
        self.parameter_errors: dict[str, int] = {}
        # a store-backed router hands over the store's overrides now and at each reload that
        # changes them (signaling/b2bua/settings.py); the file's router has none
        watch = getattr(self.router, "on_parameters", None)
        if watch is not None:
            watch(self.apply_parameters)
        # Read once, here, with the store's overrides as they stand at start (signaling/params.py
        # AT_RESTART: a later change waits for the next start, as the reference asks).
        p = self.parameters
        #: SS_QOS_RTP: the DSCP every media offer and answer of this node asks for
        self.rtp_dscp = int(p["SS_QOS_RTP"])
        tc = config.trace
        self.tracer = Tracer(
            TraceSettings(
                enabled=tc.enabled,
                all_calls=tc.all_calls,
                numbers=tuple(tc.numbers),
                gateways=tuple(tc.gateways),
                registrations=tc.registrations,
                length_minutes=tc.length_minutes,
                directory=Path(tc.directory),
                call_file_bytes=int(p["SS_TRACE_CALL_FILE_SIZE"]) * 1024 * 1024,
                register_file_bytes=int(p["SS_TRACE_REGISTER_FILE_SIZE"]) * 1024 * 1024,
            ),
            started_at=time.time(),
            # SS_TRACE_MASK DEBUG lowered the log to DEBUG at start (signaling/run.py): every
            # message goes to the debug file (reference behaviour 14)
            log_messages=sip_log.isEnabledFor(logging.DEBUG),
        )

    def _configure_admission(self, config: Config) -> None:
        """The file's CPS and concurrency limits: the node's, each customer's, each carrier's."""
        #: ``[sip] max_calls``: the node's concurrent-call capacity (behaviour 66), and new calls
        #: refused at it (the "capacity_limit" alarm)
        self.max_calls = config.sip_max_calls
        self.capacity_refused = 0
        if self.max_calls is not None:
            self.admission.configure(NODE_KEY, KeyLimits(max_concurrent=self.max_calls))
        for gw in config.mapping_gateways:
            self.admission.configure(
                "in:" + gw.name,
                KeyLimits(
                    max_cps=int(gw.max_cps) if gw.max_cps is not None else None,
                    max_concurrent=gw.max_calls,
                ),
            )
        for rgw in config.routing_gateways:
            self.admission.configure(
                carrier_key(rgw.name),
                KeyLimits(
                    max_cps=int(rgw.max_cps) if rgw.max_cps is not None else None,
                    max_concurrent=rgw.max_calls,
                ),
            )

    # -- lifecycle ----------------------------------------------------------------------------------

    def hangup(self, call_id: str, termination: str) -> bool:
        """End a call from outside (the router when credit runs out, an operator): BYE both
        legs (or a final response before answer) with this termination reason. False when no
        such call is up."""
        state = self.calls.get(call_id)
        if state is None:
            return False
        self.post(state.call, partial(state.call.hangup, termination))
        return True

    async def start(self) -> Addr:
        self._loop = asyncio.get_running_loop()
        # the loop's own clock from now on: read ~30 times a call, a Python frame each otherwise
        self.now = self._loop.time  # type: ignore[method-assign]
        host, port = self.config.sip_listen
        self.router.on_hangup_request(self.hangup)
        self.router.on_locate(self._locate)
        self._start_defence()
        self.local = await self.transport.start(host, port, shared=bool(self.config.sip_local_ips))
        await self._open_local_ips()
        cfg = self.config
        if cfg.sip_tls_listen is not None and cfg.sip_tls_cert and cfg.sip_tls_key:
            await self.transport.start_tls(
                cfg.sip_tls_listen[0],
                cfg.sip_tls_listen[1],
                server_context(cfg.sip_tls_cert, cfg.sip_tls_key),
                client_context(cfg.sip_tls_verify, cfg.sip_tls_ca),
            )
        elif cfg.sip_tls_verify:
            self.transport.tls_client = client_context(True, cfg.sip_tls_ca)
        self.transport_open = True
        if self.advertise is None:
            self.advertise = self.local[0] if self.local[0] not in ("0.0.0.0", "::") else "127.0.0.1"
        started = getattr(self.router, "on_node_started", None)  # a router shared by nodes
        if started is not None:  # publishes this registrar's phones and where to reach them
            started(self.registrar, (self.advertise, self.local[1], "UDP"))
        self._sample_at = (self.now(), time.thread_time(), 0)
        self._loop.call_later(SAMPLE_PERIOD, self._sample)
        watch = getattr(self.media_port, "watch", None)
        if watch is not None:
            watch(self._on_media_notice)
        return self.local

    async def _open_local_ips(self) -> None:
        """A socket on each other local IP of ``[sip] local_ips``, at the main port; the
        source IPs gateways may name (LocalIpError, and the sockets closed, when one cannot
        be bound: the node does not start)."""
        main = self.local[0]
        try:
            for ip in self.config.sip_local_ips:
                if ip != main:
                    await self.transport.add_local(ip)
        except OSError:
            await self.transport.close()
            raise
        self.sources = {ip: (None if ip == main else ip) for ip in self.config.local_ip_set()}

    def source_local(self, route: Route) -> str | None:
        """The local IP ``route``'s messages leave from (None: the main listener); raises
        KeyError when its gateway's ``source_ip`` is not one of this node's (see
        :meth:`source_refused`)."""
        return self.sources[route.source_ip] if route.source_ip else None

    def media_interfaces(self, local: str | None, route: Route) -> tuple[str | None, str | None]:
        """The media interfaces of a call's two legs: the local IP the caller reached (None:
        the main listener's) and the carrier's ``source_ip``, each when it is one of ``[media]
        interfaces``, else None (the default interface). Nothing to look at without them."""
        ips = self.config.media_interfaces  # a few IPs at most
        if not ips:
            return NO_INTERFACES
        caller = local if local is not None else self.local[0]
        return (caller if caller in ips else None, route.source_ip if route.source_ip in ips else None)

    def source_refused(self, route: Route) -> bool:
        """Whether ``route`` names a ``source_ip`` this node cannot send from (reference
        behaviour 80): the route is skipped, never tried from another IP; logged once."""
        if not route.source_ip or route.source_ip in self.sources:
            return False
        key = (route.gateway, route.source_ip)
        if key not in self._bad_sources:
            self._bad_sources.add(key)
            log.error(
                "routing gateway %s: source_ip %s is not one of this node's local IPs (%s): "
                "the gateway is skipped",
                route.gateway,
                route.source_ip,
                ", ".join(sorted(self.sources)) or "none",
            )
        return True

    def _via_local(self, request: Request) -> str | None:
        """The other local IP a request leaves from: its top Via's sent-by, when that is one
        (what local_via put there), else None (the main listener). Only asked when the node
        listens on other local IPs."""
        try:
            host = request.top_via.host
        except ValueError:
            return None
        return host if host in self.transport.locals else None

    async def stop(self) -> None:
        """End every call (BYE / final responses), let the messages go out, close the sockets."""
        for state in list(self.calls.values()):
            self.post(state.call, partial(state.call.hangup, "Shutdown"))
        for _ in range(50):
            if not self.calls:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.transport_open = False
        await self.transport.close()

    def now(self) -> float:
        loop = self._loop or asyncio.get_running_loop()
        return loop.time()

    def _may_register(self, username: str, aor: str) -> bool:
        return self.router.may_register(username, aor, self.now())

    def _locate(self, number: str) -> PhoneContact | None:
        """Where the phone registered as ``number`` is (its best binding), for calls to it."""
        bindings = self.registrar.lookup(number, self.now())
        if not bindings:
            return None
        best = bindings[0]
        return PhoneContact(best.uri, best.source[0], best.source[1], best.transport)

    def _credentials(self, username: str, realm: str) -> Password | None:
        password = self._passwords.get(username)
        if password is None:  # a store-backed router knows its gateways' passwords
            lookup = getattr(self.router, "password_for", None)
            password = lookup(username) if lookup is not None else None
        return Password(password) if password is not None else None

    # -- CallHost -----------------------------------------------------------------------------------

    # What a call sends goes out before the loop's turn ends: inside a pump (the call's input
    # runs in one, nearly always) the running pump dispatches it, in the order sent, once the
    # event at hand is handled; outside any pump (an input run from a task or from outside the
    # node), a pump runs here.

    def send_response(self, response: Response, transaction: TransactionId) -> None:
        self.layer.send_response(response, self.now(), transaction)
        if 200 <= response.status < 300 and (response.headers.get("CSeq") or "").endswith("INVITE"):
            self._note_awaiting_ack(response)
        if not self._pumping:
            self._pump()

    def send_request(self, call: Call, request: Request, addr: Addr, transport: str) -> TransactionId:
        self.tracer.link(request.call_id, call.call_id)
        local = self._via_local(request) if self.transport.locals else None
        tid = self.layer.send_request(request, addr, self.now(), transport=transport, local=local)
        self._by_transaction[tid] = call
        state = self.calls.get(call.call_id) or self._lingering.get(call.call_id)
        if state is not None:
            state.transactions.append(tid)
        if not self._pumping:
            self._pump()
        return tid

    def send_ack(self, ack: Request, addr: Addr, transport: str) -> None:
        local = self._via_local(ack) if self.transport.locals else None
        self.layer.send_stateless(ack, addr, transport, local)
        if not self._pumping:
            self._pump()

    def cancel(self, transaction: TransactionId) -> None:
        self.layer.cancel(transaction, self.now())
        if not self._pumping:
            self._pump()

    def _port_for(self, transport: str) -> int:
        tls = self.transport.tls_local
        return tls[1] if transport.upper() == "TLS" and tls is not None else self.local[1]

    def local_via(self, transport: str, local: str | None = None) -> Via:
        """Our Via for a request sent over ``transport`` from the main listener (its advertised
        address) or, ``local``, another local IP (that IP: the socket follows the Via)."""
        return Via(
            transport=transport.upper(),
            host=local or self.advertise or "127.0.0.1",
            port=self._port_for(transport),
            params={"branch": new_branch(), "rport": None},
        )

    def local_contact(self, transport: str, local: str | None = None) -> str:
        key = transport if local is None else f"{transport}/{local}"
        contact = self._contacts.get(key)
        if contact is None:  # one shared string per transport (and local IP), not one per dialog
            kind = transport.upper()
            suffix = f";transport={kind.lower()}" if kind in ("TCP", "TLS") else ""
            host = f"[{local}]" if local and ":" in local else local or self.advertise or "127.0.0.1"
            contact = f"<sip:{host}:{self._port_for(kind)}{suffix}>"
            self._contacts[key] = contact
        return contact

    def caller_pool(self, route: Route) -> CallerPool | None:
        if not route.caller_pool:
            return None
        pool = self._pools.get(route.gateway)
        sequence = route.caller_pool_sequence  # the store's (refreshed), else the node's file
        sequence = int(self.parameters["FORWARD_SIGNAL_REWRITE_SEQUENCE"]) if sequence is None else sequence
        if pool is None or pool.numbers != route.caller_pool:
            pool = CallerPool(route.caller_pool, sequence=sequence, multiplex=route.caller_pool_multiplex)
            self._pools[route.gateway] = pool
        pool.sequence = sequence  # numbers in use stay counted
        return pool

    def register_dialog(self, dialog: Dialog, call: Call, leg: str) -> None:
        self._dialogs[dialog.id] = (call, leg)
        state = self.calls.get(call.call_id)
        if state is not None:
            state.dialog_ids.append(dialog.id)
        if not self._pumping:
            self._reschedule()

    # -- media events ---------------------------------------------------------------------------------

    def _on_media_notice(self, notice: MediaNotice) -> None:
        if notice.kind in ("dtmf", "dtmf_played"):
            event = notice.event
            self.stats.dtmf_event(notice.kind, bool(event.get("inband")), event.get("via"))
        state = self.calls.get(notice.call_id)
        if state is not None:
            self.post(state.call, partial(state.call.on_media_notice, notice))


def _aor_user(uri: SipUri) -> str:
    """The registrar's key of an address-of-record: its user part (a number or a user name)."""
    if not uri.user:
        raise ValueError("an address-of-record needs a user part")
    return unquote(uri.user)


# names that lived here before the split, for their importers
__all__ = [
    "ALLOW",
    "CPS_WINDOW",
    "DTMF_INFO_TYPES",
    "SAMPLE_PERIOD",
    "TIMER_SLACK",
    "CallState",
    "Node",
    "NodeStats",
    "parse_dtmf_info",
]
