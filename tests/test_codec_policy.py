"""VOS3000 per-gateway codec settings (codec mode, softswitch-specified codec, allow codec
conversion, G729 negotiation mode) planned as SDP offer/answer and engine leg specs."""

from __future__ import annotations

import pytest

from mediacore import MediaEngine
from signaling.media.codec_policy import (
    Codec,
    CodecMismatch,
    CodecMode,
    G729Mode,
    GatewayCodecPolicy,
    _plan_offer_steps,
    offer_codec_options,
    plan_answer,
    plan_offer,
)
from tests.helpers import endpoints

PCMA = Codec(8, "PCMA")
PCMU = Codec(0, "PCMU")
G729 = Codec(18, "G729", fmtp="annexb=no")
TE = Codec(101, "telephone-event", fmtp="0-16")
AUTO = GatewayCodecPolicy()


def names(codecs: list[Codec]) -> list[str]:
    return [c.name for c in codecs]


def test_reference_scenario_customer_pcma_carrier_g729(engine: MediaEngine) -> None:
    """Transcode Module §1.3: mapping gateway forced PCMA, routing gateway forced G729, conversion
    allowed on both; the caller offers PCMA and G729, the carrier gets G729 only."""
    mapping = GatewayCodecPolicy(CodecMode.SPECIFIED, "PCMA", allow_conversion=True)
    routing = GatewayCodecPolicy(CodecMode.SPECIFIED, "G729", allow_conversion=True)
    offer = plan_offer(mapping, routing, [PCMA, G729, TE])
    assert names(offer.to_callee) == ["G729", "telephone-event"]
    answer = plan_answer(mapping, routing, offer, [G729, TE])
    assert names(answer.to_caller) == ["PCMA", "telephone-event"], "PCMA only, whatever else was offered"
    assert answer.transcoding
    # The plan drives a real engine session: it transcodes.
    with endpoints(2) as (a, b):
        engine.create_session(
            {
                "caller": {"remote_rtp": a.addr, "codecs": list(answer.caller_codecs)},
                "callee": {"remote_rtp": b.addr, "codecs": list(answer.callee_codecs)},
            }
        )
    assert engine.totals()["transcoding_sessions"] == 1


def test_auto_negotiation_relays_the_common_codec(engine: MediaEngine) -> None:
    offer = plan_offer(AUTO, AUTO, [PCMA, PCMU, TE])
    assert names(offer.to_callee) == ["PCMA", "PCMU", "telephone-event"]
    answer = plan_answer(AUTO, AUTO, offer, [PCMU, TE])
    assert names(answer.to_caller) == ["PCMU", "telephone-event"]
    assert not answer.transcoding
    with endpoints(2) as (a, b):
        engine.create_session(
            {
                "caller": {"remote_rtp": a.addr, "codecs": list(answer.caller_codecs)},
                "callee": {"remote_rtp": b.addr, "codecs": list(answer.callee_codecs)},
            }
        )
    assert engine.totals()["transcoding_sessions"] == 0


def test_no_common_codec_without_conversion_is_a_488() -> None:
    offer = plan_offer(AUTO, AUTO, [PCMA])
    with pytest.raises(CodecMismatch, match="share no codec") as err:
        plan_answer(AUTO, AUTO, offer, [G729])
    assert err.value.sip_status == 488


def test_conversion_on_both_sides_offers_what_the_carrier_allows() -> None:
    mapping = GatewayCodecPolicy(allow_conversion=True)
    routing = GatewayCodecPolicy(allow_conversion=True, allowed=("G729",))
    offer = plan_offer(mapping, routing, [PCMA, TE])
    assert names(offer.to_callee) == ["G729", "telephone-event"]
    assert offer.to_callee[0].pt == 18 and offer.to_callee[0].fmtp == "annexb=no"
    answer = plan_answer(mapping, routing, offer, [G729])
    assert names(answer.to_caller) == ["PCMA"], "no telephone-event: the carrier did not take it"
    assert answer.transcoding


def test_conversion_allowed_on_one_side_only_is_not_enough() -> None:
    mapping = GatewayCodecPolicy(allow_conversion=True)
    offer = plan_offer(mapping, AUTO, [PCMA])
    with pytest.raises(CodecMismatch):
        plan_answer(mapping, AUTO, offer, [G729])


def test_specified_codec_the_caller_did_not_offer_is_a_mismatch() -> None:
    with pytest.raises(CodecMismatch, match="did not offer the specified codec G729"):
        plan_offer(GatewayCodecPolicy(CodecMode.SPECIFIED, "G729"), AUTO, [PCMA, PCMU])
    with pytest.raises(ValueError, match="specified"):
        GatewayCodecPolicy(CodecMode.SPECIFIED)


@pytest.mark.parametrize(
    ("mode", "caller_g729", "expected"),
    [
        (G729Mode.AUTO, "G729", ["G729"]),
        (G729Mode.AUTO, "G729a", ["G729a"]),
        (G729Mode.G729, "G729a", ["G729"]),
        (G729Mode.G729A, "G729", ["G729a"]),
        (G729Mode.BOTH, "G729", ["G729", "G729a"]),
    ],
)
def test_g729_negotiation_modes(mode: G729Mode, caller_g729: str, expected: list[str]) -> None:
    routing = GatewayCodecPolicy(g729_mode=mode, allowed=("G729",))
    offer = plan_offer(AUTO, routing, [Codec(18, caller_g729), PCMA])
    g729s = [c for c in offer.to_callee if c.family == "G729"]
    assert names(g729s) == expected
    assert len({c.pt for c in offer.to_callee}) == len(offer.to_callee), "payload types stay unique"
    # Whatever name the carrier picks, it is the caller's bitstream: relayed, not transcoded.
    answer = plan_answer(AUTO, routing, offer, [g729s[-1]])
    assert not answer.transcoding


def test_allowed_list_orders_and_filters() -> None:
    mapping = GatewayCodecPolicy(allowed=("PCMU", "PCMA"))
    offer = plan_offer(mapping, AUTO, [PCMA, G729, PCMU, TE])
    assert names(offer.caller) == ["PCMU", "PCMA", "telephone-event"], "G729 is not allowed here"


OPUS = Codec(111, "opus", 48000, 2)
CN = Codec(13, "CN")


@pytest.mark.parametrize(
    "offered",
    [[PCMU], [PCMA, PCMU, TE], [TE, PCMA], [OPUS, PCMA, CN, TE], [PCMU, Codec(8, "PCMA"), Codec(8, "PCMA")]],
)
@pytest.mark.parametrize("conversion", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("can_transcode", [True, False])
def test_unrestricted_offer_takes_the_fast_path_to_the_same_plan(
    offered: list[Codec], conversion: tuple[bool, bool], can_transcode: bool
) -> None:
    """Gateways without codec settings (most calls) skip the planning steps: the plan is the
    caller's offer as it is, exactly what the steps compute, and no ng codec options."""
    mapping = GatewayCodecPolicy(allow_conversion=conversion[0], g729_mode=G729Mode.G729A)
    routing = GatewayCodecPolicy(allow_conversion=conversion[1], g729_mode=G729Mode.BOTH)
    plan = plan_offer(mapping, routing, offered, can_transcode=can_transcode)
    assert plan.unchanged
    assert plan == _plan_offer_steps(mapping, routing, offered, can_transcode)
    assert offer_codec_options(offered, plan) == {}


@pytest.mark.parametrize(
    ("mapping", "routing", "offered", "can_transcode"),
    [
        (GatewayCodecPolicy(allowed=("PCMA",)), AUTO, [PCMA, PCMU], True),
        (AUTO, GatewayCodecPolicy(CodecMode.SPECIFIED, "PCMU"), [PCMA, PCMU], True),
        (GatewayCodecPolicy(allow_conversion=True), GatewayCodecPolicy(allow_conversion=True), [PCMA], True),
        (AUTO, GatewayCodecPolicy(g729_mode=G729Mode.BOTH), [PCMA, G729], True),
    ],
)
def test_a_restriction_addition_or_g729_takes_the_planning_steps(
    mapping: GatewayCodecPolicy, routing: GatewayCodecPolicy, offered: list[Codec], can_transcode: bool
) -> None:
    plan = plan_offer(mapping, routing, offered, can_transcode=can_transcode)
    assert not plan.unchanged
    assert plan.to_callee != offered


def test_an_offer_of_telephone_event_alone_is_still_refused() -> None:
    with pytest.raises(CodecMismatch, match="no allowed codec"):
        plan_offer(AUTO, AUTO, [TE])
