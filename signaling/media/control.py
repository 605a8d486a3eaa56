"""Media control for the B2BUA: one vocabulary (rtpengine's ng commands), two transports.

The call controller asks for media with ``offer`` / ``answer`` / ``delete`` / ``query`` /
``play_dtmf``. :class:`InProcessMedia` hands each command straight to the engine running in this
process (the same sans-IO ng processor a media node serves, without a socket);
:class:`NgMediaClient` sends it as a bencoded datagram to a media node — ours (``softswitch
media``) or a real rtpengine — retransmitting with the same cookie until answered, as the ng
protocol intends (the node's reply cache answers duplicates without acting twice).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mediacore import MediaEngine
from mediacore.aio import EventWatcher
from mediacore.types import MediaEvent
from signaling.media import bencode

log = logging.getLogger("softswitch.media")

#: ng retransmission schedule: first wait, then doubling, this many tries in all.
NG_FIRST_WAIT = 0.25
NG_TRIES = 4


class MediaControlError(Exception):
    """The media engine refused a command (its ``error-reason``), or never answered."""


@dataclass(frozen=True, slots=True)
class MediaNotice:
    """An engine event attributed to a call: DTMF, media timeout, hold timeout."""

    call_id: str
    #: The tag of the party whose media produced the event (the leg it came from).
    from_tag: str | None
    kind: str
    event: MediaEvent


@dataclass(slots=True)
class OfferOptions:
    """What a media offer/answer asks of the engine beyond the SDP itself."""

    #: ng flags, e.g. ``["trust-address"]``, ``["always-transcode"]``.
    flags: Sequence[str] = ()
    #: ng ``codec`` dictionary: ``{"strip": [...], "mask": [...], "transcode": [...]}``.
    codec: Mapping[str, Sequence[str]] = field(default_factory=dict)
    #: Further ng keys passed as they are (``"DTMF-mode"``, ``"ICE": "remove"``…).
    extra: Mapping[str, bencode.Encodable] = field(default_factory=dict)


def _text(value: bencode.Value | None) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


def _sdp_params(
    call_id: str, from_tag: str, to_tag: str | None, sdp: bytes, options: OfferOptions | None
) -> dict[str, bencode.Encodable]:
    """The keys of an ``offer`` or ``answer`` besides the command's name."""
    params: dict[str, bencode.Encodable] = {"call-id": call_id, "from-tag": from_tag, "sdp": sdp}
    if to_tag is not None:
        params["to-tag"] = to_tag
    if options is not None:
        if options.flags:
            params["flags"] = list(options.flags)
        if options.codec:
            params["codec"] = {k: list(v) for k, v in options.codec.items()}
        params.update(options.extra)
    return params


def _sdp_of(name: str, reply: dict[bytes, bencode.Value]) -> bytes:
    out = reply.get(b"sdp")
    if not isinstance(out, bytes):
        raise MediaControlError(f"{name} reply carries no SDP")
    return out


class _NgCommands:
    """The command vocabulary over an abstract ``_exchange`` of one datagram."""

    def __init__(self) -> None:
        self._cookie_prefix = secrets.token_hex(4)
        self._counter = itertools.count(1)

    async def _exchange(self, datagram: bytes) -> bytes:
        raise NotImplementedError

    async def command(self, name: str, **params: bencode.Encodable) -> dict[bytes, bencode.Value]:
        body: dict[str | bytes, bencode.Encodable] = {"command": name}
        body.update(params)
        cookie = f"{self._cookie_prefix}_{next(self._counter)}".encode()
        reply = await self._exchange(cookie + b" " + bencode.encode(body))
        rcookie, _, rbody = reply.partition(b" ")
        if rcookie != cookie:
            raise MediaControlError(f"ng reply for another request ({rcookie!r})")
        try:
            decoded = bencode.decode(rbody)
        except bencode.BencodeError as exc:
            raise MediaControlError(f"undecodable ng reply: {exc}") from exc
        if not isinstance(decoded, dict):
            raise MediaControlError("ng reply is not a dictionary")
        result = _text(decoded.get(b"result"))
        if result == "error":
            raise MediaControlError(_text(decoded.get(b"error-reason")) or "media engine error")
        return decoded

    async def ping(self) -> None:
        reply = await self.command("ping")
        if _text(reply.get(b"result")) != "pong":
            raise MediaControlError(f"ping answered {reply.get(b'result')!r}")

    async def offer(
        self, call_id: str, from_tag: str, sdp: bytes, options: OfferOptions | None = None
    ) -> bytes:
        """Apply an SDP offer (or re-offer) from the party ``from_tag``; returns the SDP to send
        to the other party."""
        return await self._sdp_command("offer", call_id, from_tag, to_tag=None, sdp=sdp, options=options)

    async def answer(
        self,
        call_id: str,
        from_tag: str,
        to_tag: str,
        sdp: bytes,
        options: OfferOptions | None = None,
    ) -> bytes:
        """Apply the answer of ``to_tag`` to the offer of ``from_tag``; returns the SDP for the
        offerer."""
        return await self._sdp_command("answer", call_id, from_tag, to_tag=to_tag, sdp=sdp, options=options)

    async def _sdp_command(
        self,
        name: str,
        call_id: str,
        from_tag: str,
        *,
        to_tag: str | None,
        sdp: bytes,
        options: OfferOptions | None,
    ) -> bytes:
        params = _sdp_params(call_id, from_tag, to_tag, sdp, options)
        return _sdp_of(name, await self.command(name, **params))

    async def delete(self, call_id: str, from_tag: str | None = None) -> dict[bytes, bencode.Value] | None:
        """Delete the call's media (all of it, or one party's); the reply carries the call's final
        statistics, as a ``query`` would. Unknown calls are not an error (None): a delete must be
        safe to repeat at teardown."""
        params: dict[str, bencode.Encodable] = {"call-id": call_id}
        if from_tag is not None:
            params["from-tag"] = from_tag
        try:
            return await self.command("delete", **params)
        except MediaControlError as exc:
            if "nknown call" not in str(exc):
                raise
            return None

    async def query(self, call_id: str) -> dict[bytes, bencode.Value]:
        return await self.command("query", **{"call-id": call_id})

    async def play_dtmf(  # noqa: PLR0917 (positional: the media step's args tuple)
        self,
        call_id: str,
        from_tag: str,
        digits: str,
        duration_ms: int = 100,
        volume_dbm0: int = -8,
        source: str = "",
    ) -> None:
        """Play DTMF from the party ``from_tag`` toward the other (rtpengine's ``play DTMF``).
        ``source="info"`` (ours, ``DTMF-source``): the digits are that party's SIP INFO, which
        the engine refuses ("DTMF locked") when the party takes digits another way."""
        params: dict[str, bencode.Encodable] = {
            "call-id": call_id,
            "from-tag": from_tag,
            "code": digits,
            "duration": duration_ms,
            "volume": volume_dbm0,
        }
        if source:
            params["DTMF-source"] = source
        await self.command("play DTMF", **params)


#: :meth:`InProcessMedia.delete_later`'s answer when the reply comes later
DEFERRED = object()

#: how often the replies of deferred deletes are collected while any is outstanding, seconds:
#: a worker deletes a session in microseconds; the call's record, and the slots it holds
#: (concurrent calls of its account and gateways), wait this long at most. Each collection
#: wakes the media worker and walks the pending deletes: at 1,000 calls a second, every 2 ms
#: (as before) cost about 4 % of a call's CPU in-process against every 10 ms (bench/README.md)
DELETE_POLL_S = 0.010


#: ``delete``'s flag (ours; rtpengine would log it as unknown) asking for the counters only: per
#: party and stream ``flags`` and ``stats``, the RTP stream's ``mediacore`` ``expected``,
#: ``lost`` and ``jitter_us``, and the totals — all :func:`media_report_by_party` reads
BRIEF_STATS = ["brief-stats"]

#: what a call's record keeps of a delete's final statistics, per party: ``(tag, rtp_packets,
#: quality)``, ``quality`` being ``(expected, lost, jitter_us)`` of the RTP received from that
#: party, or None without statistics. The in-process engine hands a deferred delete's outcome
#: on in this form (the numbers a ``brief-stats`` reply carries, without building the reply);
#: :func:`media_report_by_party` reads it as it reads a reply.
PartyCounters = tuple[tuple[bytes, int, tuple[int, int, int] | None], ...]

#: a delete's outcome: its reply (or its parties' counters), None for an unknown call, or the
#: refusal
DeleteOutcome = dict[bytes, bencode.Value] | PartyCounters | MediaControlError | None


def _delete_outcome(reply: dict[bytes, bencode.Value]) -> DeleteOutcome:
    """A delete's reply as ``delete`` returns it: the reply, None for an unknown call (a delete
    is safe to repeat), or the refusal."""
    if reply.get(b"result") != b"error":
        return reply
    reason = _text(reply.get(b"error-reason")) or "media engine error"
    if "nknown call" in reason:
        return None
    return MediaControlError(reason)


class InProcessMedia(_NgCommands):
    """The engine in this process. Commands run synchronously (they take microseconds: session
    creation waits only for a worker's acknowledgement); engine events are attributed to calls
    and handed to ``on_notice``."""

    def __init__(self, engine: MediaEngine) -> None:
        super().__init__()
        self.engine = engine
        self._ng = engine.ng_control()
        self._watcher: EventWatcher | None = None
        #: deferred deletes by the engine's token: who gets the reply
        self._deferred: dict[int, Callable[[DeleteOutcome], None]] = {}
        self._collecting: asyncio.TimerHandle | None = None

    async def _exchange(self, datagram: bytes) -> bytes:
        reply = self._ng.handle(datagram)
        if reply is None:
            raise MediaControlError("the ng processor could not frame the request")
        return reply

    async def command(self, name: str, **params: bencode.Encodable) -> dict[bytes, bencode.Value]:
        """In-process the dictionary goes to the engine as it is: no bencode either way."""
        return self._request_now({"command": name, **params})

    def _request_now(self, body: dict[str, Any]) -> dict[bytes, bencode.Value]:
        reply: dict[bytes, bencode.Value] = self._ng.request(body)
        if reply.get(b"result") == b"error":
            raise MediaControlError(_text(reply.get(b"error-reason")) or "media engine error")
        return reply

    def _offer_now(
        self, call_id: str, from_tag: str, sdp: bytes, options: OfferOptions | None = None
    ) -> bytes:
        body: dict[str, Any] = {"command": "offer"}
        body.update(_sdp_params(call_id, from_tag, None, sdp, options))
        return _sdp_of("offer", self._request_now(body))

    def _answer_now(
        self, call_id: str, from_tag: str, to_tag: str, sdp: bytes, options: OfferOptions | None = None
    ) -> bytes:
        body: dict[str, Any] = {"command": "answer"}
        body.update(_sdp_params(call_id, from_tag, to_tag, sdp, options))
        return _sdp_of("answer", self._request_now(body))

    def _delete_now(self, call_id: str, from_tag: str | None = None) -> dict[bytes, bencode.Value] | None:
        body: dict[str, Any] = {"command": "delete", "call-id": call_id}
        if from_tag is not None:
            body["from-tag"] = from_tag
        try:
            return self._request_now(body)
        except MediaControlError as exc:
            if "nknown call" not in str(exc):
                raise
            return None

    def delete_later(
        self,
        call_id: str,
        from_tag: str | None,
        done: Callable[[DeleteOutcome], None],
    ) -> DeleteOutcome | object:
        """``delete`` without waiting for the media worker that owns the call's sessions (the
        loop must never stall on another thread): the call is gone for every later command at
        once, and its reply — the final statistics — reaches ``done`` on the loop a moment
        later (within the engine's reply timeout, else as a MediaControlError). A reply known
        at once (an unknown call: None; a refusal) is returned instead and ``done`` is never
        called; else :data:`DEFERRED` is returned. Needs a running loop."""
        # the counters only (our flag): the node reads nothing else of the reply
        body: dict[str, Any] = {"command": "delete", "call-id": call_id, "flags": BRIEF_STATS}
        if from_tag is not None:
            body["from-tag"] = from_tag
        started = self._ng.delete_deferred(body, counters=True)
        if not isinstance(started, int):
            return _delete_outcome(started)
        self._deferred[started] = done
        if self._collecting is None:
            self._collecting = asyncio.get_running_loop().call_later(DELETE_POLL_S, self._collect)
        return DEFERRED

    @property
    def deferred_deletes(self) -> int:
        """Deletes whose final statistics have not been handed on yet."""
        return len(self._deferred)

    def _collect(self) -> None:
        self._collecting = None
        for token, reply in self._ng.collect_deletes():
            self._hand_on(token, reply)
        if self._deferred:
            self._collecting = asyncio.get_running_loop().call_later(DELETE_POLL_S, self._collect)

    def _hand_on(self, token: int, reply: dict[bytes, bencode.Value] | PartyCounters) -> None:
        done = self._deferred.pop(token, None)
        if done is None:
            return
        try:
            done(reply if isinstance(reply, tuple) else _delete_outcome(reply))
        except Exception:
            log.exception("media delete: handing on the final statistics failed")

    def run_now(self, command: str, args: tuple[Any, ...]) -> object:
        """Run the command named ``command`` (``offer``, ``answer``, ``delete``, ``query``,
        ``play_dtmf``) with ``args`` and return its reply — synchronously: in-process nothing
        awaits (the engine answers in microseconds), so the node runs a call's media step inline
        instead of through a task. Raises what the command raises (MediaControlError). The
        three commands of every call run without a coroutine (``_offer_now``…: the same
        requests and replies as ``offer``…)."""
        if command == "offer":
            return self._offer_now(*args)
        if command == "answer":
            return self._answer_now(*args)
        if command == "delete":
            return self._delete_now(*args)
        step = getattr(self, command)(*args)
        try:
            step.send(None)
        except StopIteration as done:
            return done.value
        step.close()
        raise RuntimeError(f"in-process media command {command} tried to wait")

    def watch(self, on_notice: Callable[[MediaNotice], None]) -> None:
        """Start delivering engine events (needs a running loop)."""

        def deliver(batch: list[MediaEvent]) -> None:
            for event in batch:
                owner = self._ng.call_of(event["session"])
                if owner is None:
                    continue
                call_id, caller_tag, callee_tag = owner
                tag = caller_tag if event["side"] == "caller" else callee_tag
                on_notice(
                    MediaNotice(
                        call_id=call_id.decode("utf-8", "replace"),
                        from_tag=tag.decode("utf-8", "replace") if tag is not None else None,
                        kind=event["kind"],
                        event=event,
                    )
                )

        self._watcher = EventWatcher(self.engine, on_events=deliver)

    @property
    def call_count(self) -> int:
        return self._ng.call_count

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        if self._collecting is not None:
            self._collecting.cancel()
            self._collecting = None
        for token, reply in self._ng.finish_deletes():  # no call's final statistics lost
            self._hand_on(token, reply)
        self._ng.delete_all()


class _NgProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiters: dict[bytes, asyncio.Future[bytes]] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        cookie = data.partition(b" ")[0]
        waiter = self.waiters.get(cookie)
        if waiter is not None and not waiter.done():
            waiter.set_result(data)

    def error_received(self, exc: Exception) -> None:
        log.warning("ng socket error: %s", exc)


class NgMediaClient(_NgCommands):
    """A media node over rtpengine's ng protocol (UDP)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.address = (host, port)
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _NgProtocol | None = None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(_NgProtocol, remote_addr=self.address)
        self._transport, self._protocol = transport, protocol

    async def _exchange(self, datagram: bytes) -> bytes:
        if self._transport is None or self._protocol is None:
            await self.connect()
        transport, protocol = self._transport, self._protocol
        assert transport is not None and protocol is not None
        cookie = datagram.partition(b" ")[0]
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        protocol.waiters[cookie] = waiter
        wait = NG_FIRST_WAIT
        try:
            for _ in range(NG_TRIES):
                transport.sendto(datagram)
                try:
                    return await asyncio.wait_for(asyncio.shield(waiter), wait)
                except TimeoutError:
                    wait *= 2
            raise MediaControlError(f"media node {self.address[0]}:{self.address[1]} did not answer")
        finally:
            protocol.waiters.pop(cookie, None)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
