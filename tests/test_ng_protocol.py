"""The engine serves rtpengine's ng protocol: offer/answer rewrite SDP to our ports and media flows."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from mediacore import MediaEngine
from tests.helpers import NgClient, bdecode, endpoints, rtp, sdp, sdp_media_port
from tests.media import send_paced


@pytest.fixture
def ng(engine: MediaEngine) -> Iterator[NgClient]:
    addr = engine.serve_ng("127.0.0.1:0")
    client = NgClient(addr)
    try:
        yield client
    finally:
        client.close()


def test_ping(ng: NgClient) -> None:
    assert ng.request({"command": "ping"}) == {"result": b"pong"}


def test_offer_answer_relay_query_delete(engine: MediaEngine, ng: NgClient, port_range) -> None:
    with endpoints(2) as (a, b):
        offer = sdp(a.addr)
        r = ng.request({"command": "offer", "call-id": "call-1", "from-tag": "ftag", "sdp": offer})
        assert r["result"] == b"ok", r
        to_callee = r["sdp"]
        assert isinstance(to_callee, bytes)
        host_b, port_b = sdp_media_port(to_callee)
        assert host_b == "127.0.0.1" and port_range[0] <= port_b <= port_range[1] and port_b % 2 == 0
        # Everything but the address lines survives untouched.
        assert b"a=rtpmap:8 PCMA/8000\r\n" in to_callee and b"a=fmtp:101 0-16\r\n" in to_callee
        assert f"a=rtcp:{port_b + 1}".encode() in to_callee
        assert str(a.addr[1]).encode() not in to_callee

        r = ng.request(
            {
                "command": "answer",
                "call-id": "call-1",
                "from-tag": "ftag",
                "to-tag": "ttag",
                "sdp": sdp(b.addr),
            }
        )
        assert r["result"] == b"ok", r
        host_a, port_a = sdp_media_port(r["sdp"])  # type: ignore[arg-type]
        assert port_a != port_b

        # Media flows through the ports the rewritten SDP named.
        a.send(rtp(1, 0, 0xA), (host_a, port_a))
        assert b.recv()[0] == rtp(1, 0, 0xA)
        b.send(rtp(1, 0, 0xB), (host_b, port_b))
        assert a.recv()[0] == rtp(1, 0, 0xB)

        q = ng.request({"command": "query", "call-id": "call-1"})
        assert q["result"] == b"ok"
        totals = q["totals"]
        assert isinstance(totals, dict)
        rtp_totals = totals["RTP"]
        assert isinstance(rtp_totals, dict)
        assert rtp_totals["packets"] == 2

        assert len(engine.session_ids()) == 1
        d = ng.request({"command": "delete", "call-id": "call-1", "from-tag": "ftag"})
        assert d["result"] == b"ok"
        assert engine.session_ids() == []
        a.send(rtp(2, 160, 0xA), (host_a, port_a))
        assert b.drain(0.2) == []


def test_retransmitted_offer_is_answered_from_cache(engine: MediaEngine, ng: NgClient) -> None:
    with endpoints(1) as (a,):
        msg = {"command": "offer", "call-id": "call-rt", "from-tag": "f", "sdp": sdp(a.addr)}
        r1 = ng.request(msg, cookie="samecookie")
        r2 = ng.request(msg, cookie="samecookie")
        assert r1 == r2
        assert len(engine.session_ids()) == 1


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"c1 this is not bencode", b"Failed to decode bencode"),
        (b"c2 d7:command7:explodee", b"Unrecognized command"),
        (b"c3 d7:command5:offer8:from-tag1:f3:sdp4:v=0\ne", b"No call-id"),
        (b"c4 d7:command5:offer7:call-id1:x8:from-tag1:fe", b"No SDP body"),
        (b"c5 le", b"Failed to decode bencode"),
    ],
)
def test_bad_control_input_gets_an_error_and_the_engine_keeps_running(
    ng: NgClient, datagram: bytes, reason: bytes
) -> None:
    reply = ng.raw(datagram)
    cookie, _, body = reply.partition(b" ")
    assert cookie == datagram.split(b" ")[0]
    decoded = bdecode(body)
    assert isinstance(decoded, dict)
    assert decoded["result"] == b"error"
    error_reason = decoded["error-reason"]
    assert isinstance(error_reason, bytes) and reason in error_reason
    assert ng.request({"command": "ping"}) == {"result": b"pong"}


def test_sdp_without_media_is_an_error(engine: MediaEngine, ng: NgClient) -> None:
    body = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    r = ng.request({"command": "offer", "call-id": "nomedia", "from-tag": "f", "sdp": body})
    assert r["result"] == b"error"
    assert b"media" in r["error-reason"]  # type: ignore[operator]
    assert engine.session_ids() == []


def test_answer_for_unknown_call(ng: NgClient) -> None:
    r = ng.request(
        {
            "command": "answer",
            "call-id": "nope",
            "from-tag": "f",
            "to-tag": "t",
            "sdp": sdp(("127.0.0.1", 4000)),
        }
    )
    assert r["result"] == b"error"
    assert b"Unknown call" in r["error-reason"]  # type: ignore[operator]


def test_capacity_exhaustion_is_an_ng_error(port_range) -> None:
    eng = MediaEngine(port_min=port_range[0], port_max=port_range[0] + 3)
    client = NgClient(eng.serve_ng("127.0.0.1:0"))
    try:
        ok = client.request(
            {"command": "offer", "call-id": "c1", "from-tag": "f", "sdp": sdp(("127.0.0.1", 4000))}
        )
        assert ok["result"] == b"ok"
        full = client.request(
            {"command": "offer", "call-id": "c2", "from-tag": "f", "sdp": sdp(("127.0.0.1", 4002))}
        )
        assert full["result"] == b"error"
        assert b"port" in full["error-reason"]  # type: ignore[operator]
        assert len(eng.session_ids()) == 1
    finally:
        client.close()
        eng.close()


def _call(
    client: NgClient, call_id: str, caller: tuple[str, int], callee: tuple[str, int]
) -> tuple[str, int]:
    """Offer and answer a call; returns where the caller must send."""
    r = client.request({"command": "offer", "call-id": call_id, "from-tag": "f", "sdp": sdp(caller)})
    assert r["result"] == b"ok", r
    r = client.request(
        {"command": "answer", "call-id": call_id, "from-tag": "f", "to-tag": "t", "sdp": sdp(callee)}
    )
    assert r["result"] == b"ok", r
    return sdp_media_port(r["sdp"])  # type: ignore[arg-type]


def test_a_call_silent_on_every_leg_is_deleted_one_way_audio_is_not(port_range) -> None:
    eng = MediaEngine(port_min=port_range[0], port_max=port_range[1], rtp_timeout=0.4)
    client = NgClient(eng.serve_ng("127.0.0.1:0"))
    try:
        with endpoints(4) as (a, b, c, d):
            _call(client, "dead", a.addr, b.addr)
            to_engine = _call(client, "oneway", c.addr, d.addr)
            assert len(eng.session_ids()) == 2
            deadline = time.monotonic() + 1.5
            seq = 0
            while time.monotonic() < deadline:  # the caller of "oneway" talks; nobody else does
                c.send(rtp(seq, seq * 160, 3), to_engine)
                seq += 1
                time.sleep(0.02)
            listed = client.request({"command": "list"})
            assert listed["calls"] == [b"oneway"]
            gone = client.request({"command": "query", "call-id": "dead"})
            assert gone["result"] == b"error"
            assert len(eng.session_ids()) == 1
            # The control plane still sees every event: the reaper reads a copy.
            kinds = {(e["kind"], e["side"]) for e in eng.drain_events()}
            assert ("media_timeout", "caller") in kinds and ("media_timeout", "callee") in kinds
    finally:
        client.close()
        eng.close()


def test_ng_offer_pcma_answer_g729_transcodes(engine: MediaEngine, ng: NgClient) -> None:
    """The VOS3000 case through ng: customer PCMA, carrier G.729 (rtpengine's codec flags)."""
    with endpoints(2) as (a, b):
        r = ng.request(
            {
                "command": "offer",
                "call-id": "tc-1",
                "from-tag": "f",
                "sdp": sdp(a.addr),
                "codec": {"transcode": ["G729"]},
            }
        )
        assert r["result"] == b"ok", r
        offer_out = r["sdp"]
        assert isinstance(offer_out, bytes)
        assert b"a=rtpmap:18 G729/8000" in offer_out
        to_b = sdp_media_port(offer_out)
        g729_answer = sdp(b.addr, codecs="18 101").replace(
            "a=rtpmap:8 PCMA/8000\r\n", "a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n"
        )
        r = ng.request(
            {"command": "answer", "call-id": "tc-1", "from-tag": "f", "to-tag": "t", "sdp": g729_answer}
        )
        assert r["result"] == b"ok", r
        answer_out = r["sdp"]
        assert isinstance(answer_out, bytes)
        assert b"RTP/AVP 8 101" in answer_out and b"G729" not in answer_out
        to_a = sdp_media_port(answer_out)

        # 20 ms PCMA from the customer, in real time (it is played out of a jitter buffer).
        got = send_paced(a, to_a, [(seq * 0.02, rtp(seq, seq * 160, 0xA)) for seq in range(10)], b, 0.4)
        # Ten packets, then at most 60 ms of concealment before the output pauses.
        assert 10 <= len(got) <= 13
        assert all(p[1] & 0x7F == 18 and len(p) == 12 + 20 for p in got)
        (session_id,) = engine.session_ids()
        assert engine.totals()["transcoding_sessions"] == 1
        b.send(got[0], to_b)  # and G.729 from the carrier comes back as PCMA
        back = a.recv()[0]
        assert back[1] & 0x7F == 8 and len(back) == 12 + 160
        assert engine.query_session(session_id)["caller"]["transcoding"] is not None
        q = ng.request({"command": "query", "call-id": "tc-1"})
        tags = q["tags"]
        assert isinstance(tags, dict)
        stream = tags["f"]["medias"][0]["streams"][0]
        jb = stream["mediacore"]["jitter buffer"]
        assert jb["mode"] == b"adaptive" and jb["packets"] == 10 and jb["late"] == 0
        assert jb["target delay ms"] >= 20
