"""The B2BUA's media control: one vocabulary over the in-process engine, our ng node and rtpengine.

Each transport is driven through the same offer → answer → media → query → delete sequence with
real RTP on loopback, so a call controller written against ``MediaControl`` works unchanged on any.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import time

import pytest

from mediacore import MediaEngine
from signaling.b2bua.parts import media_report_by_party
from signaling.media import bencode
from signaling.media.control import (
    DEFERRED,
    InProcessMedia,
    MediaControlError,
    MediaNotice,
    NgMediaClient,
    OfferOptions,
)
from tests.b2bua_harness import rtpengine_process
from tests.helpers import Endpoint, endpoints, rtp, sdp, sdp_media_port

RTPENGINE = shutil.which("rtpengine")


def test_bencode_round_trip_and_refusals() -> None:
    value: bencode.Encodable = {"command": "offer", "flags": ["a", b"b"], "n": -3, "d": {"z": 1, "a": [b""]}}
    encoded = bencode.encode(value)
    assert encoded == b"d7:command5:offer1:dd1:al0:e1:zi1ee5:flagsl1:a1:be1:ni-3ee"
    assert bencode.decode(encoded) == {
        b"command": b"offer",
        b"d": {b"a": [b""], b"z": 1},
        b"flags": [b"a", b"b"],
        b"n": -3,
    }
    for bad in (b"", b"i12", b"5:abc", b"l", b"d1:ae", b"di1ei2ee", b"x", b"i1ei2e", b"l" * 100):
        with pytest.raises(bencode.BencodeError):
            bencode.decode(bad)


async def _call_through(media: InProcessMedia | NgMediaClient, call_id: str, port_range=None) -> None:
    """offer/answer/RTP both ways/query/delete, then the ports stop relaying."""
    with endpoints(2) as (a, b):
        to_callee = await media.offer(call_id, "tag-a", sdp(a.addr).encode())
        host_b, port_b = sdp_media_port(to_callee)
        if port_range is not None:
            assert port_range[0] <= port_b <= port_range[1]
        to_caller = await media.answer(call_id, "tag-a", "tag-b", sdp(b.addr).encode())
        host_a, port_a = sdp_media_port(to_caller)
        assert port_a != port_b

        a.send(rtp(1, 0, 0xA), (host_a, port_a))
        assert b.recv()[0][12:] == rtp(1, 0, 0xA)[12:]
        b.send(rtp(1, 0, 0xB), (host_b, port_b))
        assert a.recv()[0][12:] == rtp(1, 0, 0xB)[12:]

        q = await media.query(call_id)
        assert q[b"result"] == b"ok"

        await media.delete(call_id)
        await media.delete(call_id)  # teardown must be safe to repeat
        a.send(rtp(2, 160, 0xA), (host_a, port_a))
        assert b.drain(0.2) == []


def test_in_process_offer_answer_relay_delete(engine: MediaEngine, port_range) -> None:
    media = InProcessMedia(engine)

    async def main() -> None:
        await media.ping()
        await _call_through(media, "inproc-1", port_range)
        assert media.call_count == 0
        assert engine.session_ids() == []

    asyncio.run(main())
    media.close()


def test_in_process_errors_are_media_control_errors(engine: MediaEngine) -> None:
    media = InProcessMedia(engine)

    async def main() -> None:
        with pytest.raises(MediaControlError, match="nknown call"):
            await media.answer("nope", "a", "b", sdp(("127.0.0.1", 4000)).encode())
        with pytest.raises(MediaControlError):
            await media.offer("bad", "a", b"this is not sdp")
        # codec options pass through: strip PCMA leaves only telephone-event → refused
        with pytest.raises(MediaControlError):
            await media.offer(
                "strip", "a", sdp(("127.0.0.1", 4000)).encode(), OfferOptions(codec={"strip": ["all"]})
            )

    asyncio.run(main())
    assert engine.session_ids() == []
    media.close()


def test_in_process_events_are_attributed_to_calls(port_range) -> None:
    """A media timeout reaches the controller with the call-id and the silent party's tag."""
    eng = MediaEngine(
        interface="127.0.0.1", port_min=port_range[0], port_max=port_range[1], workers=1, rtp_timeout=0.3
    )
    media = InProcessMedia(eng)
    notices: list[MediaNotice] = []

    async def main() -> None:
        got = asyncio.Event()

        def on_notice(n: MediaNotice) -> None:
            notices.append(n)
            got.set()

        media.watch(on_notice)
        with endpoints(2) as (a, b):
            await media.offer("ev-1", "tag-a", sdp(a.addr).encode())
            to_caller = await media.answer("ev-1", "tag-a", "tag-b", sdp(b.addr).encode())
            a.send(rtp(1, 0, 0xA), sdp_media_port(to_caller))
            await asyncio.wait_for(got.wait(), 5.0)

    try:
        asyncio.run(main())
    finally:
        media.close()
        eng.close()
    assert notices, "no event"
    n = notices[0]
    assert n.call_id == "ev-1" and n.kind == "media_timeout"
    assert n.from_tag in ("tag-a", "tag-b")


def test_ng_client_against_our_media_node(engine: MediaEngine, port_range) -> None:
    host, port = engine.serve_ng("127.0.0.1:0")
    media = NgMediaClient(host, port)

    async def main() -> None:
        await media.ping()
        await _call_through(media, "ng-1", port_range)
        with pytest.raises(MediaControlError, match="nknown call"):
            await media.answer("nope", "a", "b", sdp(("127.0.0.1", 4000)).encode())
        media.close()

    asyncio.run(main())
    assert engine.session_ids() == []


def test_ng_client_gives_up_on_a_silent_node() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        media = NgMediaClient("127.0.0.1", sink.getsockname()[1])

        async def main() -> None:
            with pytest.raises(MediaControlError, match="did not answer"):
                await media.ping()
            media.close()

        asyncio.run(main())
        # the same request was retransmitted (same cookie) before giving up
        cookies = set()
        sink.settimeout(0.1)
        with contextlib.suppress(TimeoutError):
            while True:
                data, _ = sink.recvfrom(2048)
                cookies.add(data.partition(b" ")[0])
        assert len(cookies) == 1


def test_ng_client_drives_a_real_rtpengine(port_range) -> None:
    if RTPENGINE is None:
        # scripts/install.sh installs rtpengine-daemon; under CI its absence is a failure
        assert not os.environ.get("CI"), "rtpengine is not installed"
        pytest.skip("rtpengine-daemon is not installed (scripts/install.sh installs it)")
    ng_port = port_range[1] - 1
    with rtpengine_process(ng_port, port_range[0], port_range[0] + 100):
        media = NgMediaClient("127.0.0.1", ng_port)

        async def main() -> None:
            deadline = time.monotonic() + 10
            while True:  # rtpengine takes a moment to open its control socket
                try:
                    await media.ping()
                    break
                except MediaControlError:
                    if time.monotonic() > deadline:
                        raise
            await _call_through(media, "rtpengine-1", (port_range[0], port_range[0] + 100))
            media.close()

        asyncio.run(main())


def test_in_process_request_needs_no_bencode(engine: MediaEngine) -> None:
    """The dictionary form of the in-process transport: same commands, same replies, and input
    that cannot be a ng value is refused with ValueError, not a crash."""
    ng = engine.ng_control()
    assert ng.request({"command": "ping"}) == {b"result": b"pong"}
    reply = ng.request(
        {"command": "offer", "call-id": "d1", "from-tag": "a", "sdp": sdp(("127.0.0.1", 4000))}
    )
    assert reply[b"result"] == b"ok" and b"m=audio " in reply[b"sdp"]
    assert ng.request({"command": "nonsense"})[b"result"] == b"error"
    for bad in ({"command": True}, {"command": 1.5}, {"command": "offer", "x": {1: 2}}):
        with pytest.raises(ValueError):
            ng.request(bad)
    deep: dict[str, object] = {"command": "ping"}
    node = deep
    for _ in range(40):
        node["x"] = {}
        node = node["x"]  # type: ignore[assignment]
    with pytest.raises(ValueError, match="deeply"):
        ng.request(deep)
    assert ng.request({"command": "delete", "call-id": "d1"})[b"result"] == b"ok"


def test_in_process_delete_later_does_not_wait_and_loses_no_statistics(engine: MediaEngine) -> None:
    """``delete_later`` (what the node uses to end a call's media): the call is gone for every
    later command at once, and the final statistics — every packet relayed before the delete —
    reach the continuation on the loop afterwards. A delete still outstanding when the media
    control closes is finished, not dropped."""
    media = InProcessMedia(engine)
    outcomes: dict[str, object] = {}
    queried: dict[str, dict[bytes, bencode.Value]] = {}

    async def call(call_id: str, a: Endpoint, b: Endpoint, packets: int) -> None:
        to_callee = await media.offer(call_id, "tag-a", sdp(a.addr).encode())
        to_caller = await media.answer(call_id, "tag-a", "tag-b", sdp(b.addr).encode())
        for n in range(packets):
            a.send(rtp(n, 160 * n, 0xA), sdp_media_port(to_caller))
            b.recv()
        b.send(rtp(0, 0, 0xB), sdp_media_port(to_callee))
        a.recv()

    async def main() -> None:
        with endpoints(4) as (a1, b1, a2, b2):
            await call("later-1", a1, b1, 5)
            await call("later-2", a2, b2, 3)
            for call_id in ("later-1", "later-2"):  # the full report, nothing sent after it
                queried[call_id] = await media.query(call_id)
            started = media.delete_later("later-1", "tag-a", lambda r: outcomes.__setitem__("later-1", r))
            assert started is DEFERRED
            assert media.call_count == 1, "the call is gone for the engine at once"
            with pytest.raises(MediaControlError, match="nknown call"):
                await media.query("later-1")
            assert "later-1" not in outcomes, "not handed on inside the call that started it"
            # an unknown call is answered at once, like delete: None
            assert media.delete_later("nope", "tag-a", lambda r: outcomes.__setitem__("nope", r)) is None
            for _ in range(500):
                if "later-1" in outcomes:
                    break
                await asyncio.sleep(0.002)
            assert media.deferred_deletes == 0
            # the second is left outstanding for close()
            assert (
                media.delete_later("later-2", "tag-a", lambda r: outcomes.__setitem__("later-2", r))
                is DEFERRED
            )

    asyncio.run(main())
    assert "nope" not in outcomes
    assert "later-2" not in outcomes
    media.close()
    parties = {"tag-a": "caller", "tag-b": "callee"}
    for call_id, sent_by_caller in (("later-1", 5), ("later-2", 3)):
        outcome = outcomes[call_id]
        # the parties' counters, not a reply: (tag, RTP packets, (expected, lost, jitter_us))
        assert isinstance(outcome, tuple), outcome
        assert [(tag, n) for tag, n, _ in outcome] == [(b"tag-a", sent_by_caller), (b"tag-b", 1)]
        packets, quality = media_report_by_party(outcome, parties)
        assert packets == {"caller": sent_by_caller, "callee": 1}, (call_id, packets)
        # what the CDR reads, equal to what the full report of a query just before said
        assert (packets, quality) == media_report_by_party(queried[call_id], parties)
        assert set(quality) == {"caller", "callee"}
    assert engine.session_ids() == []
