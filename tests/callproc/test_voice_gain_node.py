"""SS_VOICEGAIN through a node (security-quality-timerouting-failover.md §B.9, behaviour 31): the
gain stored for the node reaches the media engine of each call as our ng key ``voice-gain`` (the
engine's ng query then reports ``gain_db`` on every leg's RTP stream), nothing is sent at 0 dB
(a real rtpengine sees nothing new by default), and a change stored while the node runs reaches
the next call at the router's reload while a running call keeps its own (class ``reload``,
signaling/params.py). The node is a real :class:`Node` on a fake clock with the in-process engine
(tests/callproc/node_clock.py); the level change itself is measured in tests/test_voice_gain.py."""

from __future__ import annotations

from typing import Any

from signaling.media.control import InProcessMedia, OfferOptions
from signaling.store import Store
from tests.callproc.node_clock import FakeClockNode, fake_clock_node, invite
from tests.callproc.world import basic_world


def gains(h: FakeClockNode, call_id: str) -> set[int]:
    """Every ``gain_db`` in the engine's ng query of the call (one per leg's RTP stream)."""
    media = h.node.media_port
    assert isinstance(media, InProcessMedia)
    return _find(media.run_now("query", (call_id,)))


def _find(reply: object) -> set[int]:
    if isinstance(reply, dict):
        found = {v for k, v in reply.items() if k == b"gain_db" and isinstance(v, int)}
        return found.union(*(_find(v) for v in reply.values()))
    if isinstance(reply, list):
        return set().union(*(_find(v) for v in reply))
    return set()


def record_offers(h: FakeClockNode) -> list[dict[str, Any]]:
    """The extra ng keys of every offer and answer the node asks of the engine from now on."""
    media = h.node.media_port
    assert isinstance(media, InProcessMedia)
    seen: list[dict[str, Any]] = []
    run_now = media.run_now

    def recording(command: str, args: tuple[Any, ...]) -> object:
        if command in ("offer", "answer") and args and isinstance(args[-1], OfferOptions):
            seen.append(dict(args[-1].extra))
        return run_now(command, args)

    media.run_now = recording  # type: ignore[method-assign]
    return seen


def test_the_stored_gain_reaches_each_new_call_s_media(sqlite_store: Store) -> None:
    store = sqlite_store
    basic_world(store)
    with fake_clock_node(store) as h:
        offers = record_offers(h)
        h.receive(invite("flat"))
        h.advance(0.1)
        assert gains(h, "flat") == {0}
        assert offers and all("voice-gain" not in o for o in offers), offers

        store.set_parameter("SS_VOICEGAIN", 6)
        assert h.router.refresh()
        assert h.node.parameters["SS_VOICEGAIN"] == 6  # the reload came
        h.receive(invite("louder"))
        h.advance(0.1)
        assert gains(h, "louder") == {6}
        assert offers[-1]["voice-gain"] == 6

        store.set_parameter("SS_VOICEGAIN", -10)
        assert h.router.refresh()
        h.receive(invite("quieter"))
        h.advance(0.1)
        assert gains(h, "quieter") == {-10}
        assert gains(h, "louder") == {6}, "the running call's session is left as it was"
