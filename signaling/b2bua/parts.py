"""What a call is made of besides its state machine: the ports it acts through (media, host),
its legs and attempts, and the small parsers it uses. Split from call.py to keep each file small.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from signaling.media.control import OfferOptions, PartyCounters
from signaling.routing import Route, Router
from signaling.sip.dialog import Dialog
from signaling.sip.identity import CallerPool
from signaling.sip.message import Headers, Request, Response, Via
from signaling.sip.transaction import TransactionId

if TYPE_CHECKING:
    from signaling.b2bua.call import Call
    from signaling.b2bua.codecs import CodecStep

Addr = tuple[str, int]
#: What a media command gives back: the reply (SDP bytes, a query dict, None) or the refusal.
MediaResult = Any
Continuation = Callable[[MediaResult], None]


SDP = "application/sdp"
#: CDR termination reasons shared by call.py and reoffer.py: the engine refused a call's media;
#: no codec the gateways' settings let the two parties share (reference: "codec mismatch"; 488)
MEDIA_FAILURE = "MediaFailure"
CODEC_MISMATCH = "Codec mismatch"


class MediaPort(Protocol):
    """The media-control vocabulary (signaling.media.control implements it twice)."""

    async def offer(
        self, call_id: str, from_tag: str, sdp: bytes, options: OfferOptions | None = None
    ) -> bytes: ...

    async def answer(
        self, call_id: str, from_tag: str, to_tag: str, sdp: bytes, options: OfferOptions | None = None
    ) -> bytes: ...

    async def delete(self, call_id: str, from_tag: str | None = None) -> dict[bytes, Any] | None: ...

    async def query(self, call_id: str) -> dict[bytes, Any]: ...

    async def play_dtmf(  # noqa: PLR0917 (positional: the media step's args tuple)
        self,
        call_id: str,
        from_tag: str,
        digits: str,
        duration_ms: int = 100,
        volume_dbm0: int = -8,
        source: str = "",
    ) -> None: ...


class CallHost(Protocol):
    """What a call needs from the node (or from a test's fake)."""

    @property
    def router(self) -> Router: ...

    @property
    def parameters(self) -> dict[str, Any]: ...

    def now(self) -> float: ...

    def send_response(self, response: Response, transaction: TransactionId) -> None: ...

    def send_request(self, call: Call, request: Request, addr: Addr, transport: str) -> TransactionId: ...

    def send_ack(self, ack: Request, addr: Addr, transport: str) -> None: ...

    def cancel(self, transaction: TransactionId) -> None: ...

    def local_via(self, transport: str, local: str | None = None) -> Via: ...

    def local_contact(self, transport: str, local: str | None = None) -> str: ...

    def source_local(self, route: Route) -> str | None: ...

    def source_refused(self, route: Route) -> bool: ...

    def media_interfaces(self, local: str | None, route: Route) -> tuple[str | None, str | None]:
        """The media interfaces of the caller's leg (``local``: the local IP the caller
        reached, None the main listener) and of ``route``'s carrier leg; None: the default."""
        ...

    def register_dialog(self, dialog: Dialog, call: Call, leg: str) -> None: ...

    def media(self, call: Call, command: str, args: tuple[Any, ...], then: Continuation) -> None:
        """Run ``MediaPort.<command>(*args)``; hand the reply, or the MediaControlError, to
        ``then`` (in this call's turn)."""
        ...

    def set_timer(self, call: Call, name: str, delay: float, action: Callable[[], None]) -> None: ...

    def cancel_timer(self, call: Call, name: str) -> None: ...

    def call_ended(self, call: Call) -> None: ...

    def caller_pool(self, route: Route) -> CallerPool | None:
        """The caller number pool of the route's gateway (shared by all its calls)."""
        ...


@dataclass(slots=True)
class Attempt:
    """One INVITE toward one route."""

    route: Route
    request: Request
    transaction: TransactionId
    addr: Addr
    provisional: int = 0
    dialog: Dialog | None = None
    sdp_seen: bool = False
    cancelled: bool = False
    #: this INVITE already carries our answer to the carrier's digest challenge
    authenticated: bool = False
    #: the carrier sent any response to it (a timeout or transport failure leaves it False)
    heard: bool = False
    #: the attempt's codec plan (signaling/b2bua/codecs.py); None: no SDP to plan
    codecs: CodecStep | None = None
    #: the carrier's tag whose early SDP the media engine took (its RTP is counted under it)
    media_tag: str | None = None


@dataclass(slots=True)
class Pending:
    """A request relayed from one leg to the other, awaiting the far side's answer."""

    origin: str  # "a" or "b": the leg that sent it
    request: Request
    transaction: TransactionId
    #: it carries an SDP offer (signaling/b2bua/reoffer.py): its answer is checked
    offer_media: bool = False
    #: the re-offer's codec plan, from the offering party's gateway toward the other's
    codecs: CodecStep | None = None
    #: the offer as the engine was given it (the origin's SDP, further audio streams at port 0)
    offer: bytes = b""
    #: the SDP sent on to the other party (the last it saw from us)
    sent: bytes = b""
    #: not a relayed request but our offer putting the other party back on the session in
    #: force (the origin's re-offer was refused): which try (docs/decisions.md)
    restore: int = 0


@dataclass(slots=True)
class Exchange:
    """The offer/answer in force in an answered call: each party's SDP as the media engine was
    given it (or as it passed, with media proxy off) and the offer's ng codec options, so the
    engine can be given it again (signaling/b2bua/reoffer.py)."""

    offerer: str  # "a" or "b"
    offer: bytes
    codec: dict[str, list[str]]
    answer: bytes

    def sent_by(self, leg_name: str) -> bytes:
        return self.offer if leg_name == self.offerer else self.answer


@dataclass(slots=True)
class Leg:
    name: str  # "a" or "b"
    addr: Addr
    transport: str
    dialog: Dialog | None = None
    tag: str = ""
    dtmf: str = "auto"
    #: the SDP we last sent this party (a re-INVITE refresh carries it unchanged)
    sdp_sent: bytes = b""


def parse_dtmf_info(request: Request) -> tuple[str, int]:
    """Digits and duration (ms) from an INFO body: ``application/dtmf-relay`` (``Signal=5``,
    ``Duration=160``) or ``application/dtmf`` (the digit alone)."""
    text = request.body.decode("ascii", "replace")
    duration = 250
    digits = ""
    if request.content_type == "application/dtmf":
        digits = text.strip()
    else:
        for line in text.splitlines():
            key, _, value = line.partition("=")
            key = key.strip().lower()
            value = value.strip()
            if key == "signal":
                digits = value
            elif key == "duration" and value.isdigit():
                duration = int(value)
    digits = digits.upper()
    if digits == "10":
        digits = "*"
    elif digits == "11":
        digits = "#"
    if not digits or any(c not in "0123456789*#ABCD" for c in digits):
        return "", duration
    return digits, duration


def rtp_packets_by_party(report: dict[bytes, Any], parties: dict[str, str]) -> dict[str, int]:
    """RTP packets each party sent us, from an ng ``query`` reply (``tags`` → ``medias`` →
    ``streams`` → ``stats``), keyed by ``parties[tag]``."""
    out: dict[str, int] = {}
    tags = report.get(b"tags")
    if not isinstance(tags, dict):
        return out
    for tag, info in tags.items():
        name = parties.get(tag.decode("utf-8", "replace")) if isinstance(tag, bytes) else None
        if name is None or not isinstance(info, dict):
            continue
        total = 0
        for media in info.get(b"medias", []) or []:
            for stream in (media.get(b"streams", []) if isinstance(media, dict) else []) or []:
                if not isinstance(stream, dict) or b"RTP" not in (stream.get(b"flags") or []):
                    continue
                stats = stream.get(b"stats")
                if isinstance(stats, dict) and isinstance(stats.get(b"packets"), int):
                    total += stats[b"packets"]
        out[name] = total
    return out


def media_quality_by_party(
    report: dict[bytes, Any], parties: dict[str, str]
) -> dict[str, tuple[int, int, float]]:
    """What each party's RTP stream measured at our receiving end, from the ``mediacore``
    dictionary of an ng ``query``/``delete`` reply: (packets expected, packets lost, interarrival
    jitter in ms), keyed by ``parties[tag]``. A reply without it (rtpengine) gives nothing."""
    out: dict[str, tuple[int, int, float]] = {}
    tags = report.get(b"tags")
    if not isinstance(tags, dict):
        return out
    for tag, info in tags.items():
        name = parties.get(tag.decode("utf-8", "replace")) if isinstance(tag, bytes) else None
        if name is None or not isinstance(info, dict):
            continue
        for media in info.get(b"medias", []) or []:
            for stream in (media.get(b"streams", []) if isinstance(media, dict) else []) or []:
                ours = stream.get(b"mediacore") if isinstance(stream, dict) else None
                if not isinstance(ours, dict):
                    continue
                expected, lost, jitter_us = (ours.get(k) for k in (b"expected", b"lost", b"jitter_us"))
                if isinstance(expected, int) and isinstance(lost, int) and isinstance(jitter_us, int):
                    out[name] = (expected, max(0, lost), jitter_us / 1000.0)
    return out


def media_report_by_party(
    report: dict[bytes, Any] | PartyCounters, parties: dict[str, str]
) -> tuple[dict[str, int], dict[str, tuple[int, int, float]]]:
    """:func:`rtp_packets_by_party` and :func:`media_quality_by_party` of one reply, in one
    walk over it (every call's ``delete`` reply is read this way), or of the parties' counters
    the in-process engine hands on instead of a deferred delete's reply (the same numbers)."""
    if isinstance(report, tuple):
        return _counters_by_party(report, parties)
    packets: dict[str, int] = {}
    quality: dict[str, tuple[int, int, float]] = {}
    tags = report.get(b"tags")
    if not isinstance(tags, dict):
        return packets, quality
    for tag, info in tags.items():
        name = parties.get(tag.decode("utf-8", "replace")) if isinstance(tag, bytes) else None
        if name is None or not isinstance(info, dict):
            continue
        total = 0
        for media in info.get(b"medias", []) or []:
            for stream in (media.get(b"streams", []) if isinstance(media, dict) else []) or []:
                if not isinstance(stream, dict):
                    continue
                if b"RTP" in (stream.get(b"flags") or []):
                    stats = stream.get(b"stats")
                    if isinstance(stats, dict) and isinstance(stats.get(b"packets"), int):
                        total += stats[b"packets"]
                ours = stream.get(b"mediacore")
                if isinstance(ours, dict):
                    expected, lost = ours.get(b"expected"), ours.get(b"lost")
                    jitter_us = ours.get(b"jitter_us")
                    if isinstance(expected, int) and isinstance(lost, int) and isinstance(jitter_us, int):
                        quality[name] = (expected, max(0, lost), jitter_us / 1000.0)
        packets[name] = total
    return packets, quality


def _counters_by_party(
    counters: PartyCounters, parties: dict[str, str]
) -> tuple[dict[str, int], dict[str, tuple[int, int, float]]]:
    packets: dict[str, int] = {}
    quality: dict[str, tuple[int, int, float]] = {}
    for tag, rtp_packets, measured in counters:
        name = parties.get(tag.decode("utf-8", "replace"))
        if name is None:
            continue
        packets[name] = rtp_packets
        if measured is not None:
            expected, lost, jitter_us = measured
            quality[name] = (expected, max(0, lost), jitter_us / 1000.0)
    return packets, quality


#: What an established call still reads from the INVITEs that set it up.
_KEPT_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")


def slim_request(request: Request) -> Request:
    """A copy of ``request`` with only the headers an established call still reads, no body
    (the header fields themselves are shared with ``request``: they never change)."""
    headers = Headers.from_wire([item for item in request.headers if item[0] in _KEPT_HEADERS])
    return Request(method=request.method, uri=request.uri, headers=headers, body=b"")
