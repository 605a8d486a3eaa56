"""The store's codec fields of mapping and routing gateways (transcoding spec §3.2-§3.5) reach
the call: the store router puts each gateway's codec policy on the admission and on its routes,
and the store refuses settings the call path could not use."""

from __future__ import annotations

import pytest

from signaling.media.codec_policy import CodecMode, G729Mode, GatewayCodecPolicy
from signaling.store import MappingGateway, RoutingGateway, Store, ValidationError
from tests.callproc.world import FakeNode, basic_world


def test_store_router_puts_each_gateways_policy_on_the_call(sqlite_store: Store) -> None:
    basic_world(
        sqlite_store,
        mapping={"codecs": ("PCMA",), "codec_mode": "specified", "allow_transcoding": True},
        gateways=(
            {"name": "carrier-a", "prefixes": ("1",), "codecs": ("G729",), "allow_transcoding": True},
            {"name": "carrier-b", "prefixes": ("1",), "priority": 2, "g729_mode": "g729a"},
        ),
    )
    node = FakeNode.on(sqlite_store)
    admission = node.admit("call-0", "12125550100")
    assert admission.rejection is None
    # the store's RFC 2833 payload (default 101, transcoding behaviours 15-17) comes along
    assert admission.codecs == GatewayCodecPolicy(
        CodecMode.SPECIFIED, "PCMA", allow_conversion=True, allowed=("PCMA",), rfc2833_payload=101
    )
    by_name = {r.gateway: r.codecs for r in admission.routes}
    assert by_name["carrier-a"] == GatewayCodecPolicy(
        allow_conversion=True, allowed=("G729",), rfc2833_payload=101
    )
    assert by_name["carrier-b"] == GatewayCodecPolicy(g729_mode=G729Mode.G729A, rfc2833_payload=101)


def test_the_store_refuses_codec_settings_the_call_path_cannot_use(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store)
    admin = sqlite_store.admin(operator="test")
    with pytest.raises(ValidationError, match="codecs"):
        admin.create(MappingGateway("bad", ids.customer, addresses=("10.0.0.9",), codecs=("PCMA/8000",)))
    with pytest.raises(ValidationError, match="codecs"):
        admin.create(RoutingGateway("bad", host="127.0.0.1", codec_mode="specified"))


def test_the_cdr_records_both_legs_codecs(sqlite_store: Store) -> None:
    """Transcode Module §1.3 verification: the CDR records the codec information."""
    basic_world(sqlite_store)
    node = FakeNode.on(sqlite_store)
    node.admit("call-0", "12125550100")
    node.answer("call-0")
    node.records["call-0"].codec_in, node.records["call-0"].codec_out = "PCMA", "G729"
    node.advance(30)
    node.end("call-0")
    [cdr] = node.router.records
    assert (cdr.codec_in, cdr.codec_out) == ("PCMA", "G729")
