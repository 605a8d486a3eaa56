"""The typed contract between the control plane and the media engine.

Python describes a session as plain data (these TypedDicts); the engine validates and compiles it
once per call, then runs it entirely in Rust.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

__all__ = [
    "Address",
    "CodecEntry",
    "DropCounters",
    "DtmfMode",
    "EchoCancelSpec",
    "EchoCancellerStats",
    "EngineTotals",
    "JitterBufferSpec",
    "JitterBufferStats",
    "LegSpec",
    "LegStats",
    "LocalPorts",
    "MediaEvent",
    "SessionInfo",
    "SessionSpec",
    "SessionStats",
    "TranscodeStats",
]

#: ``(ip, port)``
Address = tuple[str, int]

#: How DTMF is signalled with a leg's party (both directions): ``"rfc2833"`` (RFC 4733 events on
#: the leg's telephone-event payload type, 101 if none was negotiated), ``"info"`` (SIP INFO:
#: digits toward the party are ``dtmf``/``dtmf_played`` events with ``info_to`` for the SIP layer
#: and are kept out of its media; digits from it come only through ``play_dtmf``), ``"inband"``
#: (tones in the audio), ``"auto"`` (rfc2833 if the leg's codecs name telephone-event, else
#: inband: VOS3000's "use peer RFC2833 ability"; the default).
DtmfMode = Literal["auto", "rfc2833", "info", "inband"]


class CodecEntry(TypedDict, total=False):
    """A codec as the party's SDP lists it; ``pt`` and ``name`` are required."""

    pt: int
    #: SDP encoding name: "PCMA", "PCMU", "G729", "opus", "telephone-event".
    name: str
    #: RTP clock in Hz; default 8000 (opus 48000).
    clock_rate: int
    channels: int
    fmtp: str | None


class JitterBufferSpec(TypedDict, total=False):
    """The jitter buffer of the stream a party sends (VOS3000 ``SS_JITTERBUFFER_*``). Always on
    where the stream is decoded; on a relayed stream only with ``relay``."""

    #: ``SS_JITTERBUFFER_MODE``: ``"adaptive"`` (1, default) or ``"fixed"`` (0: the delay is
    #: ``default`` for good).
    mode: Literal["fixed", "adaptive"]
    #: ``SS_JITTERBUFFER_MIN``, ms (default 20).
    min: int
    #: ``SS_JITTERBUFFER_MAX``, ms (default 200, at most 1000).
    max: int
    #: ``SS_JITTERBUFFER_DEFAULT``: starting delay, ms (default 60).
    default: int
    #: Also re-time the party's stream when it is relayed (packets unchanged; default off).
    relay: bool


class EchoCancelSpec(TypedDict, total=False):
    """The line echo canceller of a leg (``SS_ECHOCANCEL``, ``SS_ECHOCANCELTAIL``): removes the
    echo of what we send the party from what it sends. Runs where both directions are decoded."""

    #: Default True.
    enabled: bool
    #: Tail, ms: 64 (default) or 128.
    tail: int


class LegSpec(TypedDict, total=False):
    """One leg: the party it faces. Every key is optional."""

    #: The party's RTP address from SDP; ``None`` while unknown (media toward it is dropped).
    remote_rtp: Address | None
    #: The party's RTCP address (``a=rtcp``); default RTP port + 1.
    remote_rtcp: Address | None
    #: ``"learn"`` (symmetric RTP: send where the party's packets come from; default) or
    #: ``"strict"`` (accept and send only the SDP address).
    latch: Literal["learn", "strict"]
    #: DSCP 0..63 on packets sent toward this party; default 46 (EF, ToS byte 0xB8).
    dscp: int
    #: The party holds the call (sendonly/inactive): the hold timeout applies, not the RTP one.
    hold: bool
    #: RTP clock rate by payload type for dynamic types (static ones are known).
    clock_rates: dict[int, int]
    #: Codecs the party receives, most preferred first: a static name ("PCMA", "PCMU",
    #: "G729") or a CodecEntry. When both legs list codecs and the first audio codecs differ,
    #: the engine transcodes (a transcoding slot); otherwise it relays, each RTP packet leaving
    #: with the payload type the receiving leg lists for its codec (G.729 on 18 one side,
    #: G729a on 96 the other; identity when equal or not listed).
    codecs: list[str | CodecEntry]
    #: Packetisation (ms) of what the engine encodes toward this party: 10, 20, 30, 40, 60.
    ptime: int
    #: G.729 Annex B VAD/DTX on what the engine encodes toward this party (default off).
    vad: bool
    #: The jitter buffer of the party's stream.
    jitter_buffer: JitterBufferSpec
    #: Echo cancellation on this leg.
    echo_cancel: EchoCancelSpec
    #: DTMF mode of this leg (default ``"auto"``); digits are converted between the legs' modes.
    dtmf: DtmfMode
    #: Voice gain toward this party, dB, -10..10 (SS_VOICEGAIN; default 0): relayed G.711 and
    #: decoded audio are scaled; a relayed compressed codec (G.729, Opus) passes unchanged.
    gain_db: int
    #: Comfort noise toward this party (default off): when the other party goes quiet on a
    #: decoded direction, noise at its background level instead of dead air (SS_COMFORTNOISE).
    comfort_noise: bool
    #: The local IP this leg's ports are bound on: the engine's ``interface`` (default, also
    #: ``None``) or one of its ``interfaces``; any other is refused. Read when the session is
    #: created; an update never moves the leg's ports.
    local_ip: str | None


class SessionSpec(TypedDict, total=False):
    caller: LegSpec
    callee: LegSpec
    #: Seconds without RTP on an active leg before a ``media_timeout`` event (SS_RTP_TIMEOUT).
    rtp_timeout: float
    #: Seconds without RTP on a held leg before a ``hold_timeout`` event.
    hold_timeout: float


class LocalPorts(TypedDict):
    rtp: Address
    rtcp: Address


class SessionInfo(TypedDict):
    id: int
    #: Where the caller must send (the ports written into the SDP answer to the caller).
    caller: LocalPorts
    #: Where the callee must send (the ports written into the SDP offer to the callee).
    callee: LocalPorts


class DropCounters(TypedDict):
    malformed_rtp: int
    malformed_rtcp: int
    foreign_source: int
    no_destination: int
    oversized: int


class LegStats(TypedDict):
    remote_rtp: Address | None
    remote_rtcp: Address | None
    latched: bool
    hold: bool
    datagrams: int
    packets: int
    bytes: int
    expected: int
    lost: int
    duplicates: int
    out_of_order: int
    jitter: int
    jitter_ms: float
    ssrc: int | None
    ssrc_changes: int
    highest_seq: int
    rtcp_packets: int
    rtcp_bytes: int
    sent_rtp_packets: int
    sent_rtp_bytes: int
    sent_rtcp_packets: int
    sent_rtcp_bytes: int
    send_errors: int
    dropped: DropCounters
    last_packet: float | None
    timed_out: bool
    #: Digits from the party ignored because it takes digits another way (an ``auto`` party
    #: locked to its first kind, or SIP INFO from an ``rfc2833``/``inband`` party).
    dtmf_ignored: int
    #: The transcoding path that takes this party's media; None when relayed (not decoded).
    transcoding: TranscodeStats | None
    #: The jitter buffer of this party's stream: where it is decoded, or re-timed on relay.
    jitter_buffer: JitterBufferStats | None
    #: This leg's echo canceller, once it has run (both directions decoded).
    echo_canceller: EchoCancellerStats | None


class TranscodeStats(TypedDict):
    #: Audio packets taken into the jitter buffer.
    decoded_packets: int
    #: Telephone-event packets older than one already received (dropped).
    late_events: int
    unknown_payload_type: int
    encoded_packets: int
    encode_errors: int
    dtx_packets: int
    #: Packets of comfort noise sent while the sender was quiet (part of encoded_packets).
    cng_packets: int
    dtmf_packets: int
    #: Telephone-event packets kept out of the media (toward an INFO leg, or from a leg whose
    #: mode does not take events).
    dtmf_suppressed: int
    overflow_samples: int


class JitterBufferStats(TypedDict):
    mode: Literal["fixed", "adaptive"]
    #: True when re-timing a relayed stream (packets unchanged, nothing concealed).
    relay: bool
    #: Delay the buffer adds over the fastest recent packet, ms, and its target.
    current_delay_ms: float
    target_delay_ms: float
    packets: int
    #: Arrived after their audio had been played (concealed instead).
    late: int
    #: Dropped: implausible, undecodable, oversized, or overflowing the buffer.
    discarded: int
    duplicates: int
    reordered: int
    concealed_ms: int
    played_ms: int
    #: Shares of the played audio: concealed, removed by accelerate, added by expand.
    concealment_rate: float
    accelerate_rate: float
    expand_rate: float
    #: Times the buffer restarted on a new timeline (timestamp jump, new SSRC or codec).
    resyncs: int


class EchoCancellerStats(TypedDict):
    tail_ms: int
    #: Bulk delay estimate: position of the largest filter tap, ms.
    delay_ms: float
    #: Echo return loss, and its enhancement by the canceller's linear filter, dB (0 until
    #: measured in far-end single talk).
    erl_db: float
    erle_db: float
    double_talk_ratio: float
    converged: bool


class SessionStats(TypedDict):
    id: int
    age: float
    caller: LegStats
    callee: LegStats


class MediaEvent(TypedDict):
    """An engine event. ``dtmf``: the party of ``side`` sent a digit. ``dtmf_played``: a digit
    queued with ``play_dtmf`` was rendered toward the party of ``side``."""

    kind: Literal["media_timeout", "hold_timeout", "dtmf", "dtmf_played"]
    session: int
    side: Literal["caller", "callee"]
    #: Seconds of silence (timeouts; 0 for DTMF).
    silent_for: float
    time: float
    #: DTMF: the digit ('0'-'9', '*', '#', 'A'-'D', 'F' flash), its duration, its level
    #: (-dBm0), and when it began (ms since the session was created).
    digit: NotRequired[str]
    duration_ms: NotRequired[int]
    volume: NotRequired[int]
    at_ms: NotRequired[int]
    #: ``dtmf`` only: True when detected as tones in the audio, False for an RFC 4733 event.
    inband: NotRequired[bool]
    #: ``dtmf`` only: False when the event was closed without an end packet.
    ended: NotRequired[bool]
    #: ``dtmf`` only: the leg whose mode is SIP INFO and whose party must get this digit as a
    #: SIP INFO (``application/dtmf-relay``) from the SIP layer; None otherwise.
    info_to: NotRequired[Literal["caller", "callee"] | None]
    #: ``dtmf_played`` only: how the digit reached the party; ``"info"`` means the SIP layer
    #: must send it as SIP INFO to the party of ``side``.
    via: NotRequired[Literal["rfc2833", "inband", "info"]]


class EngineTotals(TypedDict):
    sessions: int
    datagrams_in: int
    forwarded: int
    dropped: int
    send_errors: int
    #: Sessions a worker could not register with its poller (their next command fails).
    setup_failures: int
    ports_in_use: int
    port_capacity: int
    transcoding_sessions: int
    transcode_slots: int
    busy_permille: int
