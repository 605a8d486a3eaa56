"""The gateways' codec settings on their way to a call (transcoding spec §3.2-§3.5): configuration
keys and store fields → the routers' admission and routes → the B2BUA's per-attempt plan, the
ng ``codec`` options that make a real engine write exactly the planned SDP, and the SDP edits
the engine has no word for (G.729 naming, media proxy off)."""

from __future__ import annotations

from typing import Any

import pytest

from mediacore import MediaEngine
from signaling.b2bua.codecs import plan_attempt, reoffer_options
from signaling.config import ConfigError, load
from signaling.media.codec_policy import (
    CodecMismatch,
    CodecMode,
    G729Mode,
    GatewayCodecPolicy,
    offer_codec_options,
    plan_offer,
    policy_from_settings,
)
from signaling.media.control import InProcessMedia, OfferOptions
from signaling.media.sdp_codecs import audio_codecs, audio_first, keep_formats, name_g729
from signaling.routing import NO_CODEC_SETTINGS, InboundCall, StaticRouter

AUTO = GatewayCodecPolicy()
CONVERT = GatewayCodecPolicy(allow_conversion=True)


def sdp(formats: str, *attributes: str) -> bytes:
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0"]
    lines += [f"m=audio 40000 RTP/AVP {formats}", *attributes, "a=sendrecv"]
    return ("\r\n".join(lines) + "\r\n").encode()


PCMA_TE = sdp("8 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16")
PCMA_G729_TE = sdp(
    "8 18 101",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:18 G729/8000",
    "a=fmtp:18 annexb=no",
    "a=rtpmap:101 telephone-event/8000",
)


def families(body: bytes) -> list[str]:
    return [c.family for c in audio_codecs(body) or []]


# -- SDP reading and editing --------------------------------------------------------------------------


def test_audio_codecs_reads_static_and_mapped_formats() -> None:
    body = sdp("0 96 18 97", "a=rtpmap:96 opus/48000/2", "a=fmtp:18 annexb=yes")
    codecs = audio_codecs(body)
    assert codecs is not None
    assert [(c.pt, c.name, c.clock_rate, c.channels) for c in codecs] == [
        (0, "PCMU", 8000, 1),
        (96, "opus", 48000, 2),
        (18, "G729", 8000, 1),
    ], "97 has no rtpmap: left out"
    assert codecs[2].fmtp == "annexb=yes"
    assert audio_codecs(b"v=0\r\nm=video 5000 RTP/AVP 96\r\n") is None
    assert audio_codecs(sdp("8").replace(b"40000", b"0")) is None, "a disabled stream negotiates nothing"


def test_keep_formats_cuts_the_format_list_and_its_attributes() -> None:
    out = keep_formats(PCMA_G729_TE, [18, 101])
    assert b"m=audio 40000 RTP/AVP 18 101\r\n" in out
    assert b"PCMA" not in out and b"a=fmtp:18 annexb=no" in out and b"a=sendrecv" in out
    assert keep_formats(PCMA_G729_TE, [8, 18, 101]) == PCMA_G729_TE


def test_audio_first_moves_telephone_event_and_comfort_noise_last() -> None:
    body = sdp("101 13 18 8", "a=rtpmap:101 telephone-event/8000")
    assert b"m=audio 40000 RTP/AVP 18 8 101 13\r\n" in audio_first(body)
    assert audio_first(PCMA_G729_TE) == PCMA_G729_TE


def test_name_g729_renames_or_offers_both_names() -> None:
    renamed = name_g729(PCMA_G729_TE, ["G729a"])
    assert b"a=rtpmap:18 G729a/8000" in renamed and b"G729/8000" not in renamed
    both = name_g729(PCMA_G729_TE, ["G729", "G729a"])
    assert b"m=audio 40000 RTP/AVP 8 18 96 101" in both
    assert b"a=rtpmap:96 G729a/8000\r\na=fmtp:96 annexb=no" in both
    assert name_g729(PCMA_G729_TE, ["G729"]) == PCMA_G729_TE
    assert name_g729(PCMA_TE, ["G729a"]) == PCMA_TE, "no G.729: nothing to name"
    no_rtpmap = sdp("18")
    assert b"a=rtpmap:18 G729a/8000" in name_g729(no_rtpmap, ["G729a"])


# -- settings → policy --------------------------------------------------------------------------------


def test_policy_from_settings_reads_the_store_fields() -> None:
    policy = policy_from_settings(("G729", "PCMA"), "specified", True, "both")
    assert policy == GatewayCodecPolicy(
        CodecMode.SPECIFIED, "G729", allow_conversion=True, g729_mode=G729Mode.BOTH, allowed=("G729", "PCMA")
    )
    assert policy_from_settings((), "auto", False, "auto") == NO_CODEC_SETTINGS
    with pytest.raises(ValueError, match=r"^codec_mode: "):
        policy_from_settings((), "forced", False, "auto")
    with pytest.raises(ValueError, match=r"^codecs: codec_mode 'specified' needs"):
        policy_from_settings((), "specified", False, "auto")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"codec_mode": "forced"}, r"routing_gateway\[0\]\.codec_mode: expected one of auto, specified"),
        ({"codec_mode": "specified"}, r"routing_gateway\[0\]\.codecs: codec_mode 'specified' needs"),
        ({"codecs": "PCMA"}, r"routing_gateway\[0\]\.codecs: expected a list of strings"),
        ({"codecs": ["PCMA/8000"]}, r"routing_gateway\[0\]\.codecs: expected codec names"),
        ({"allow_transcoding": "yes"}, r"routing_gateway\[0\]\.allow_transcoding: expected true or false"),
        ({"g729_mode": "g729b"}, r"routing_gateway\[0\]\.g729_mode: expected one of auto, g729, g729a, both"),
        ({"codec": ["PCMA"]}, r"routing_gateway\[0\]\.codec: unknown key \(did you mean 'codecs'\?\)"),
    ],
)
def test_bad_codec_keys_are_named(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load({"routing_gateway": [{"name": "c", "address": "127.0.0.1:5080", **keys}]})


def test_static_router_puts_each_gateways_policy_on_the_call() -> None:
    cfg = load(
        {
            "mapping_gateway": [
                {"name": "cust", "addresses": ["127.0.0.1"], "codecs": ["PCMA"], "allow_transcoding": True}
            ],
            "routing_gateway": [
                {
                    "name": "g729-carrier",
                    "address": "127.0.0.1:5080",
                    "codecs": ["G729"],
                    "codec_mode": "specified",
                    "allow_transcoding": True,
                    "g729_mode": "both",
                },
                {"name": "plain", "address": "127.0.0.1:5081", "priority": 1},
            ],
        }
    )
    router = StaticRouter(cfg)
    admission = router.admit(InboundCall("c1", ("127.0.0.1", 5070), "udp", "1001", "12125550100"), 0.0)
    assert admission.codecs == GatewayCodecPolicy(allow_conversion=True, allowed=("PCMA",))
    first, second = admission.routes
    assert first.codecs == GatewayCodecPolicy(
        CodecMode.SPECIFIED, "G729", allow_conversion=True, g729_mode=G729Mode.BOTH, allowed=("G729",)
    )
    assert second.codecs is NO_CODEC_SETTINGS
    cfg.routing_gateways[0].codec_mode = "auto"  # a reloaded setting is seen by the next call
    again = router.admit(InboundCall("c2", ("127.0.0.1", 5070), "udp", "1001", "12125550100"), 0.0)
    assert again.routes[0].codecs.mode is CodecMode.AUTO


# -- plans → ng codec options → what a real engine writes ---------------------------------------------


def engine_offer(engine: MediaEngine, call_id: str, body: bytes, codec: dict[str, list[str]]) -> bytes:
    media = InProcessMedia(engine)
    try:
        out = media.run_now("offer", (call_id, "caller-tag", body, OfferOptions(codec=codec)))
        assert isinstance(out, bytes)
        return out
    finally:
        media.close()


SCENARIOS = [
    # (mapping, routing, caller's SDP, the carrier's audio codecs)
    (AUTO, AUTO, PCMA_G729_TE, ["PCMA", "G729"]),
    (CONVERT, GatewayCodecPolicy(allow_conversion=True, allowed=("G729",)), PCMA_TE, ["G729"]),
    (AUTO, GatewayCodecPolicy(allowed=("G729", "PCMA")), PCMA_G729_TE, ["G729", "PCMA"]),
    (
        GatewayCodecPolicy(CodecMode.SPECIFIED, "PCMA", allow_conversion=True),
        GatewayCodecPolicy(CodecMode.SPECIFIED, "G729", allow_conversion=True),
        PCMA_G729_TE,
        ["G729"],
    ),
    (AUTO, GatewayCodecPolicy(CodecMode.SPECIFIED, "G729"), PCMA_G729_TE, ["G729"]),
    (CONVERT, CONVERT, PCMA_TE, ["PCMA", "PCMU", "G729", "OPUS"]),
]


@pytest.mark.parametrize(("mapping", "routing", "offer", "expected"), SCENARIOS)
def test_the_engine_offers_the_carrier_exactly_the_plan(
    engine: MediaEngine,
    mapping: GatewayCodecPolicy,
    routing: GatewayCodecPolicy,
    offer: bytes,
    expected: list[str],
) -> None:
    step = plan_attempt(mapping, routing, offer, can_transcode=True)
    assert step.plan is not None and step.options is not None
    assert [c.family for c in step.plan.to_callee if not c.is_telephone_event] == expected
    onward = engine_offer(engine, "plan", offer, step.options)
    # the engine appends what it adds after the caller's own formats, telephone-event included
    assert [f for f in families(onward) if f != "TELEPHONE-EVENT"] == expected, onward.decode()
    assert "TELEPHONE-EVENT" in families(onward)


def test_an_unchanged_plan_gives_no_codec_option() -> None:
    offered = audio_codecs(PCMA_G729_TE)
    assert offered is not None
    assert offer_codec_options(offered, plan_offer(AUTO, AUTO, offered)) == {}
    assert reoffer_options(AUTO, AUTO, PCMA_G729_TE) == {}


def test_reference_scenario_options() -> None:
    """Transcode Module §1.3: the caller's G729 is struck (PCMA forced on its side), its PCMA
    kept for the caller but not offered on, G729 added for the carrier."""
    step = plan_attempt(
        GatewayCodecPolicy(CodecMode.SPECIFIED, "PCMA", allow_conversion=True),
        GatewayCodecPolicy(CodecMode.SPECIFIED, "G729", allow_conversion=True),
        PCMA_G729_TE,
        can_transcode=True,
    )
    assert step.options == {
        "strip": ["G729/8000"],
        "mask": ["PCMA/8000"],
        "transcode": ["G729/8000"],
        "offer": [],
    }


def test_media_proxy_off_cuts_the_sdp_and_converts_nothing() -> None:
    routing = GatewayCodecPolicy(allowed=("G729",), allow_conversion=True)
    step = plan_attempt(CONVERT, routing, PCMA_G729_TE, can_transcode=False)
    onward = step.toward_carrier(PCMA_G729_TE, proxied=False)
    assert families(onward) == ["G729", "TELEPHONE-EVENT"]
    with pytest.raises(CodecMismatch) as err:
        plan_attempt(CONVERT, routing, PCMA_TE, can_transcode=False)
    assert err.value.side == "callee" and err.value.sip_status == 488
    step = plan_attempt(CONVERT, CONVERT, PCMA_TE, can_transcode=False)
    with pytest.raises(CodecMismatch, match="share no codec"):
        step.check_answer(sdp("18"))


def test_mismatch_sides() -> None:
    """The caller's side (no carrier can help) and a carrier's (another one may fit)."""
    with pytest.raises(CodecMismatch) as caller_side:
        plan_attempt(GatewayCodecPolicy(allowed=("G729",)), AUTO, PCMA_TE, can_transcode=True)
    assert caller_side.value.side == "caller"
    with pytest.raises(CodecMismatch) as callee_side:
        plan_attempt(AUTO, GatewayCodecPolicy(CodecMode.SPECIFIED, "G729"), PCMA_TE, can_transcode=True)
    assert callee_side.value.side == "callee"
    assert plan_attempt(AUTO, AUTO, b"", can_transcode=True).plan is None, "no SDP: nothing to plan"


def test_the_answer_toward_the_caller_spells_g729_as_its_gateway_wants() -> None:
    mapping = GatewayCodecPolicy(g729_mode=G729Mode.G729A)
    step = plan_attempt(mapping, AUTO, sdp("18", "a=rtpmap:18 G729/8000"), can_transcode=True)
    step.check_answer(sdp("18"))
    assert b"a=rtpmap:18 G729a/8000" in step.toward_caller(sdp("18"))
