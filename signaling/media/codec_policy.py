"""VOS3000 per-gateway codec settings turned into SDP codec lists and engine leg specs.

Theory of operation. A call has a caller leg (the customer's *mapping gateway*) and a callee
leg (the carrier's *routing gateway*); each has a :class:`GatewayCodecPolicy`. Planning is two
pure steps, mirroring SDP offer/answer:

1. :func:`plan_offer` — from the caller's offer, decide what we offer the carrier.
   * "Auto negotiation": the caller's codecs (those the gateway allows), unchanged.
   * "Softswitch specified": only the specified codec.
   * When the caller leg is "softswitch specified", the caller is answered with its specified
     codec only, which the caller must have offered.
   * With "allow codec conversion" on *both* gateways, codecs the engine can transcode to are
     added after the caller's own, so a carrier that shares none can still pick one.
2. :func:`plan_answer` — from the carrier's answer, decide what the caller is answered and the
   two legs' codec lists for the media engine. Transcoding happens exactly when the two legs'
   first codecs differ. No common codec and no permitted conversion is a codec mismatch, which
   the SIP layer answers with 488 Not Acceptable Here (the reference leaves the code open).

The "G729 negotiation mode" of a gateway shapes only how G.729 is *named* in SDP toward it
(G.729, G.729 Annex A and Annex B share one bitstream): Auto mirrors the name the remote used,
"G729" and "G729a" force a name, "G729&G729a" offers both (the remote picks).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cached_property

from mediacore.types import CodecEntry

__all__ = [
    "CODEC_MODES",
    "G729_MODES",
    "AnswerPlan",
    "Codec",
    "CodecMismatch",
    "CodecMode",
    "G729Mode",
    "GatewayCodecPolicy",
    "OfferPlan",
    "offer_codec_options",
    "plan_answer",
    "plan_offer",
    "policy_from_settings",
]

#: Codecs the media engine can decode and encode (name, clock rate).
TRANSCODABLE = (("PCMA", 8000), ("PCMU", 8000), ("G729", 8000), ("opus", 48000))
STATIC_PT = {"PCMU": 0, "PCMA": 8, "G729": 18}
G729_NAMES = ("G729", "G729A", "G729B", "G729AB")
#: First payload type for codecs we add (RFC 3551 dynamic range 96-127).
FIRST_DYNAMIC_PT = 96


@dataclass(frozen=True, init=False)
class Codec:
    pt: int
    name: str
    clock_rate: int = 8000
    channels: int = 1
    fmtp: str | None = None
    #: The codec with G.729 variants folded together, upper-case (derived from ``name``; read
    #: many times per call, so computed once here rather than by a cached_property, whose
    #: lock costs more than the computation).
    family: str = field(init=False, repr=False, compare=False)
    is_telephone_event: bool = field(init=False, repr=False, compare=False)

    def __init__(
        self, pt: int, name: str, clock_rate: int = 8000, channels: int = 1, fmtp: str | None = None
    ) -> None:
        # the fields in one update of the instance dictionary: a frozen dataclass's own
        # __init__ sets each through object.__setattr__ (codecs are made for every SDP read)
        upper = name.upper()
        self.__dict__.update(
            pt=pt,
            name=name,
            clock_rate=clock_rate,
            channels=channels,
            fmtp=fmtp,
            family="G729" if upper in G729_NAMES else upper,
            is_telephone_event=name.lower() == "telephone-event",
        )

    def same_codec(self, other: Codec) -> bool:
        return self.family == other.family and self.clock_rate == other.clock_rate

    def entry(self) -> CodecEntry:
        """The engine's spec form of this codec."""
        e: CodecEntry = {"pt": self.pt, "name": self.name, "clock_rate": self.clock_rate}
        if self.channels != 1:
            e["channels"] = self.channels
        if self.fmtp is not None:
            e["fmtp"] = self.fmtp
        return e


class CodecMode(Enum):
    AUTO = "auto"  # "Auto negotiation"
    SPECIFIED = "specified"  # "Softswitch specified"


class G729Mode(Enum):
    AUTO = "auto"
    G729 = "g729"
    G729A = "g729a"
    BOTH = "g729&g729a"


@dataclass(frozen=True)
class GatewayCodecPolicy:
    mode: CodecMode = CodecMode.AUTO
    #: The forced codec name with "softswitch specified" (e.g. "PCMA", "G729").
    specified: str | None = None
    #: "Allow codec conversion": this gateway's side may be transcoded.
    allow_conversion: bool = False
    g729_mode: G729Mode = G729Mode.AUTO
    #: Allowed codecs in preference order; empty = whatever the endpoint offers.
    allowed: tuple[str, ...] = ()
    #: "RFC2833 Payload": telephone-event's payload type in the offers we send the gateway
    #: (media anchored); None = the offerer's number (docs/decisions.md "DTMF").
    rfc2833_payload: int | None = None
    #: "Use peer RFC2833 ability": False adds telephone-event to an offer toward the gateway
    #: whose offerer lacks it (media anchored).
    use_peer_rfc2833: bool = True

    def __post_init__(self) -> None:
        if self.mode is CodecMode.SPECIFIED and not self.specified:
            raise ValueError("specified: a codec name is required with mode 'specified'")

    @cached_property  # read on every call (a frozen dataclass without slots can cache)
    def restricts(self) -> bool:
        """The gateway narrows or forces codecs ("softswitch specified", or allowed codecs)."""
        return self.mode is CodecMode.SPECIFIED or bool(self.allowed)


class CodecMismatch(Exception):
    """No codec the two sides can share, and conversion is not permitted (SIP 488)."""

    sip_status = 488

    def __init__(self, message: str, side: str = "callee") -> None:
        super().__init__(message)
        #: Whose settings or SDP left nothing: "caller" (the mapping gateway's, or the caller's
        #: offer: no carrier can change that) or "callee" (this carrier's: another may fit).
        self.side = side


@dataclass(frozen=True)
class OfferPlan:
    #: Codecs of our INVITE to the carrier, in preference order.
    to_callee: list[Codec]
    #: The caller's codecs we accept (after the mapping gateway's policy).
    caller: list[Codec]
    #: Both lists are the caller's offer as it is (the fast path of :func:`plan_offer`).
    unchanged: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class AnswerPlan:
    #: Codecs of our answer to the caller.
    to_caller: list[Codec]
    #: Engine leg codec lists (first = what we send that party).
    caller_codecs: list[CodecEntry]
    callee_codecs: list[CodecEntry]
    transcoding: bool


def _allowed(policy: GatewayCodecPolicy, codecs: list[Codec]) -> list[Codec]:
    if not policy.allowed:
        return list(codecs)
    order = {n.upper(): i for i, n in enumerate(policy.allowed)}
    keep = [c for c in codecs if c.is_telephone_event or c.family in order or c.name.upper() in order]
    last = len(order)  # telephone-event keeps its place after the audio codecs

    def rank(c: Codec) -> int:
        return last if c.is_telephone_event else order.get(c.family, order.get(c.name.upper(), last))

    return sorted(keep, key=rank)


def _audio(codecs: list[Codec]) -> list[Codec]:
    return [c for c in codecs if not c.is_telephone_event]


def _events(codecs: list[Codec]) -> list[Codec]:
    return [c for c in codecs if c.is_telephone_event]


def _free_pt(used: set[int]) -> int:
    pt = FIRST_DYNAMIC_PT
    while pt in used:
        pt += 1
    return pt


def _make(name: str, used: set[int]) -> Codec:
    family = "G729" if name.upper() in G729_NAMES else name
    rate = 48000 if family.lower() == "opus" else 8000
    pt = STATIC_PT.get(family.upper())
    if pt is None or pt in used:
        pt = _free_pt(used)
    fmtp = "annexb=no" if family == "G729" else None
    return Codec(pt, name, rate, 2 if family.lower() == "opus" else 1, fmtp)


def _g729_names(mode: G729Mode, remote_names: list[str]) -> list[str]:
    if mode is G729Mode.G729:
        return ["G729"]
    if mode is G729Mode.G729A:
        return ["G729a"]
    if mode is G729Mode.BOTH:
        return ["G729", "G729a"]
    return [remote_names[0]] if remote_names else ["G729"]


def _apply_g729_mode(mode: G729Mode, codecs: list[Codec], remote: list[Codec]) -> list[Codec]:
    """Rewrites the G.729 entries of `codecs` (toward a gateway) per its G729 negotiation mode."""
    remote_names = [c.name for c in remote if c.family == "G729"]
    out: list[Codec] = []
    used = {c.pt for c in codecs if c.family != "G729"}
    for c in codecs:
        if c.family != "G729":
            out.append(c)
            continue
        if any(o.family == "G729" for o in out):
            continue
        for name in _g729_names(mode, remote_names):
            made = replace(c, name=name) if c.pt not in used else _make(name, used)
            if made.pt in used:
                made = replace(made, pt=_free_pt(used))
            used.add(made.pt)
            out.append(made)
    return out


def _transcodable(c: Codec) -> bool:
    return any(c.family == name.upper() and c.clock_rate == rate for name, rate in TRANSCODABLE)


def _may_transcode(mapping: GatewayCodecPolicy, routing: GatewayCodecPolicy, can_transcode: bool) -> bool:
    """Conversion on both gateways, or both forced ("softswitch specified"), with an engine in
    the media path (``can_transcode``: media proxy on or auto)."""
    both_forced = mapping.mode is CodecMode.SPECIFIED and routing.mode is CodecMode.SPECIFIED
    return can_transcode and ((mapping.allow_conversion and routing.allow_conversion) or both_forced)


def plan_offer(
    mapping: GatewayCodecPolicy,
    routing: GatewayCodecPolicy,
    offered: list[Codec],
    *,
    can_transcode: bool = True,
) -> OfferPlan:
    """What the carrier is offered (``can_transcode`` False: no engine in the media path, so
    nothing can be converted). Raises :class:`CodecMismatch` when nothing fits."""
    if (
        not mapping.restricts
        and not routing.restricts
        and not (can_transcode and mapping.allow_conversion and routing.allow_conversion)
        and not any(c.family == "G729" for c in offered)
        and any(not c.is_telephone_event for c in offered)
    ):
        # nothing restricts, nothing is added, no G.729 to spell: the steps below would hand
        # the caller's offer on unchanged (most calls; gateways without codec settings)
        codecs = list(offered)  # one list for both (neither is changed later): held calls keep it
        return OfferPlan(to_callee=codecs, caller=codecs, unchanged=True)
    return _plan_offer_steps(mapping, routing, offered, can_transcode)


def _plan_offer_steps(
    mapping: GatewayCodecPolicy, routing: GatewayCodecPolicy, offered: list[Codec], can_transcode: bool
) -> OfferPlan:
    """:func:`plan_offer` step by step (the theory of operation's step 1)."""
    caller = _allowed(mapping, offered)
    if mapping.mode is CodecMode.SPECIFIED:
        forced = [c for c in _audio(caller) if c.family == _make(mapping.specified or "", set()).family]
        if not forced:
            raise CodecMismatch(f"the caller did not offer the specified codec {mapping.specified}", "caller")
        caller = forced + _events(caller)
    if not _audio(caller):
        raise CodecMismatch("the caller offered no allowed codec", "caller")
    used = {c.pt for c in caller}
    may_transcode = _may_transcode(mapping, routing, can_transcode) and any(
        _transcodable(c) for c in _audio(caller)
    )
    if routing.mode is CodecMode.SPECIFIED:
        spec = routing.specified or ""
        same = [c for c in _audio(caller) if c.family == _make(spec, set()).family]
        if not same and not (may_transcode and _transcodable(_make(spec, set()))):
            raise CodecMismatch(f"the carrier's specified codec {spec} needs a conversion not allowed")
        to_callee = [same[0] if same else _make(spec, used), *_events(caller)]
    else:
        to_callee = _allowed(routing, caller)
        if may_transcode and mapping.allow_conversion and routing.allow_conversion:
            extra_names = list(routing.allowed) or [n for n, _ in TRANSCODABLE]
            for name in extra_names:
                family = _make(name, set()).family
                present = any(c.family == family for c in to_callee)
                if not present and any(family == t.upper() for t, _ in TRANSCODABLE):
                    made = _make(name, used | {c.pt for c in to_callee})
                    to_callee.insert(len(_audio(to_callee)), made)
    if not _audio(to_callee):
        raise CodecMismatch("nothing left to offer the carrier")
    to_callee = _apply_g729_mode(routing.g729_mode, to_callee, offered)
    return OfferPlan(to_callee=to_callee, caller=caller)


def plan_answer(
    mapping: GatewayCodecPolicy,
    routing: GatewayCodecPolicy,
    plan: OfferPlan,
    answered: list[Codec],
    *,
    can_transcode: bool = True,
) -> AnswerPlan:
    """What the caller is answered, from the carrier's answer; raises :class:`CodecMismatch`
    when the legs would need a conversion that is not allowed (or that the engine cannot do)."""
    callee_audio = _audio(answered)
    if not callee_audio:
        raise CodecMismatch("the carrier answered no audio codec")
    chosen = callee_audio[0]
    caller_audio = _audio(plan.caller)
    common = [c for c in caller_audio if c.same_codec(chosen)]
    if mapping.mode is CodecMode.SPECIFIED or not common:
        # the caller's first codec the engine can convert from (when it must convert)
        convertible = [c for c in caller_audio if _transcodable(c)] if not common else []
        to_caller_audio = (convertible or caller_audio)[:1]
    else:
        to_caller_audio = common[:1]
    transcoding = not to_caller_audio[0].same_codec(chosen)
    if transcoding and not (
        _may_transcode(mapping, routing, can_transcode)
        and _transcodable(chosen)
        and _transcodable(to_caller_audio[0])
    ):
        raise CodecMismatch(f"caller {to_caller_audio[0].name} and carrier {chosen.name} share no codec")
    caller_events = _events(plan.caller) if _events(answered) else []
    to_caller = _apply_g729_mode(mapping.g729_mode, to_caller_audio + caller_events, plan.caller)
    return AnswerPlan(
        to_caller=to_caller,
        caller_codecs=[c.entry() for c in to_caller],
        callee_codecs=[c.entry() for c in [chosen, *_events(answered)]],
        transcoding=transcoding,
    )


#: A gateway's "codec mode" setting (store field ``codec_mode``, configuration key of the same
#: name): "Auto negotiation" / "Softswitch specified".
CODEC_MODES = {"auto": CodecMode.AUTO, "specified": CodecMode.SPECIFIED}
#: A gateway's "G729 negotiation mode" (``g729_mode``): "both" is "G729&G729a".
G729_MODES = {
    "auto": G729Mode.AUTO,
    "g729": G729Mode.G729,
    "g729a": G729Mode.G729A,
    "both": G729Mode.BOTH,
    "g729&g729a": G729Mode.BOTH,
}


def policy_from_settings(
    codecs: tuple[str, ...] | list[str],
    codec_mode: str,
    allow_transcoding: bool,
    g729_mode: str,
    *,
    rfc2833_payload: int | None = None,
    use_peer_rfc2833: bool = True,
) -> GatewayCodecPolicy:
    """A gateway's codec settings as the store and the configuration file keep them: ``codecs``
    (the allowed codecs in preference order, empty = any; with ``codec_mode = "specified"`` the
    first is the softswitch-specified codec), ``codec_mode``, ``allow_transcoding`` ("Allow codec
    conversion"), ``g729_mode``, and the DTMF ``rfc2833_payload`` (96..127, None = keep the
    offerer's) and ``use_peer_rfc2833``. Raises ValueError naming the bad setting."""
    names = tuple(c.strip() for c in codecs)
    if any(not n or "/" in n or " " in n for n in names):
        raise ValueError(f"codecs: expected codec names such as PCMA, PCMU, G729, opus (got {list(codecs)})")
    mode = CODEC_MODES.get(codec_mode.lower())
    if mode is None:
        raise ValueError(f"codec_mode: expected one of {', '.join(CODEC_MODES)} (got {codec_mode!r})")
    g729 = G729_MODES.get(g729_mode.lower())
    if g729 is None:
        raise ValueError(f"g729_mode: expected one of auto, g729, g729a, both (got {g729_mode!r})")
    if mode is CodecMode.SPECIFIED and not names:
        raise ValueError("codecs: codec_mode 'specified' needs the codec (the first of codecs)")
    if rfc2833_payload is not None and not 96 <= rfc2833_payload <= 127:
        raise ValueError(f"rfc2833_payload: expected a dynamic payload type 96..127 (got {rfc2833_payload})")
    return GatewayCodecPolicy(
        mode=mode,
        specified=names[0] if mode is CodecMode.SPECIFIED else None,
        allow_conversion=bool(allow_transcoding),
        g729_mode=g729,
        allowed=names,
        rfc2833_payload=rfc2833_payload,
        use_peer_rfc2833=bool(use_peer_rfc2833),
    )


def _option_name(c: Codec) -> str:
    return f"{c.name}/{c.clock_rate}"


def offer_codec_options(offered: list[Codec], plan: OfferPlan) -> dict[str, list[str]]:
    """The ng ``codec`` options (rtpengine's vocabulary, served by our engine too) that turn the
    caller's ``offered`` codecs into ``plan``: ``strip`` what the caller may not use at all,
    ``mask`` what it may send but the carrier is not offered, ``offer`` the caller's codecs the
    carrier is offered in the plan's order, ``transcode`` the ones the engine adds. Empty when
    the plan is the caller's offer unchanged (the SDP then passes through as it is)."""
    if plan.unchanged or (plan.caller == offered and plan.to_callee == offered):
        return {}  # the caller's offer as it is (calls without codec settings)
    kept_audio = _audio(plan.caller)
    kept_pts = {c.pt for c in plan.caller}
    onward = _audio(plan.to_callee)
    strip = [_option_name(c) for c in offered if c.pt not in kept_pts]
    mask = [_option_name(c) for c in kept_audio if not any(c.same_codec(o) for o in onward)]
    preferred: list[str] = []
    transcode: list[str] = []
    for c in onward:
        own = next((k for k in kept_audio if k.same_codec(c)), None)
        if own is not None:
            if _option_name(own) not in preferred:
                preferred.append(_option_name(own))
        else:
            transcode.append(f"{c.family if c.family == 'G729' else c.name}/{c.clock_rate}")
    options: dict[str, list[str]] = {}
    if strip:
        options["strip"] = strip
    if mask:
        options["mask"] = mask
    if transcode:
        options["transcode"] = transcode
    if options or preferred != [_option_name(c) for c in kept_audio][: len(preferred)]:
        options["offer"] = preferred
    return options
