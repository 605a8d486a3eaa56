"""Behaviour 38 (security-quality-timerouting-failover.md §B.6 "Changes apply after a restart",
§B.10 "Many parameters do not take effect until the service is restarted"): a parameter flagged
restart (signaling/params.py ``AT_RESTART``) set in the store does not change a running node's
behaviour, and does once the node restarts.

The node is ``softswitch run``'s own (:func:`signaling.run.serve` over a SQLite store, SIP on
loopback, the in-process media engine); the customer and the carrier are UDP sockets of the test.
What is watched is the media port range (``SS_MEDIAPROXYPORT_START/END``): the port of the
``m=audio`` line the node offers the carrier comes from the engine's range. ``SS_QOS_SIGNAL`` is
stored in the same change as the witness that the running node did reload (it re-marks the SIP
socket at the reload, docs/decisions.md "DSCP"): the calls after that still get ports of the old
range, the calls after the restart ports of the new one. The RTP marking (``SS_QOS_RTP``) and the
trace file sizes are watched the same way on a node on a fake clock (tests/callproc/node_clock.py)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from signaling.config import load
from signaling.media.control import InProcessMedia
from signaling.run import serve
from signaling.store import Store, open_store
from tests.b2bua_harness import port_block
from tests.callproc.node_clock import FakeClockNode, fake_clock_node, invite
from tests.callproc.test_node_parameters_live import busy, first, invite_from, peer
from tests.callproc.world import basic_world

CS3_TOS, EF_TOS = 24 << 2, 46 << 2


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'node.db'}") as opened:
        yield opened


@pytest.fixture(autouse=True)
def collector() -> Iterator[None]:
    """serve() sets the collector's policy for a node's life; the test process gets it back."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@contextlib.asynccontextmanager
async def running(url: str, sip: int) -> AsyncIterator[None]:
    """A node as ``softswitch run`` starts it; stopped (exit 0) at the end."""
    cfg = load({"sip": {"listen": f"127.0.0.1:{sip}"}, "store": {"url": url}})
    stop = asyncio.Event()
    task = asyncio.create_task(serve(cfg, stop))
    try:
        yield
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0


def media_port(invite: bytes) -> int:
    found = re.search(rb"^m=audio (\d+) ", invite, re.M)
    assert found is not None, invite
    return int(found.group(1))


@pytest.mark.timeout(90)
def test_a_restart_parameter_waits_for_the_node_s_restart(store: Store, tmp_path: Path) -> None:
    async def main() -> None:
        with contextlib.ExitStack() as stack:
            base = stack.enter_context(port_block())
            old_range, new_range = range(base + 40, base + 60), range(base + 60, base + 80)
            basic_world(
                store,
                gateways=({"name": "carrier", "prefixes": ("1",), "port": base + 1},),
                mapping={"addresses": ("127.0.0.1",)},
            )
            store.set_parameter("SS_MEDIAPROXYPORT_START", old_range.start)
            store.set_parameter("SS_MEDIAPROXYPORT_END", old_range.stop - 1)
            store.set_parameter("SS_QOS_SIGNAL", 24)
            customer = stack.enter_context(peer(base + 10))
            carrier = stack.enter_context(peer(base + 1))
            port = customer.getsockname()[1]
            sip = ("127.0.0.1", base)
            url = f"sqlite:///{tmp_path / 'node.db'}"
            calls = iter(range(1000))

            async def call(until_started: bool = False) -> tuple[int, int]:
                """One call to the carrier, refused busy: (its media port, its INVITE's ToS)."""
                call_id = f"call-{next(calls)}"
                loop = asyncio.get_running_loop()
                deadline = loop.time() + (15 if until_started else 0)
                while True:  # while the node starts, its socket may not listen yet
                    customer.sendto(invite_from(port, call_id), sip)
                    try:
                        sent, tos = await first(carrier, b"INVITE ", 1 if until_started else 10)
                        break
                    except AssertionError:
                        if loop.time() > deadline:
                            raise
                carrier.sendto(busy(sent), sip)
                await first(customer, b"SIP/2.0 486", 10)
                return media_port(sent), tos

            async with running(url, base):
                port_before, tos = await call(until_started=True)
                assert port_before in old_range and tos == CS3_TOS

                # the operator changes both: the marking (reload) and the media range (restart)
                store.set_parameter("SS_QOS_SIGNAL", 46)
                store.set_parameter("SS_MEDIA_PROXY_PORT_RANGE", f"{new_range.start},{new_range.stop - 1}")
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 20  # the node reloads every 2 s
                while tos != EF_TOS:
                    assert loop.time() < deadline, "the running node never took the reload"
                    await asyncio.sleep(0.5)
                    media, tos = await call()
                    assert media in old_range  # before and after the reload: the start's range
                media, tos = await call()
                assert tos == EF_TOS and media in old_range

            async with running(url, base):  # the restart
                media, tos = await call(until_started=True)
                assert media in new_range and tos == EF_TOS

    asyncio.run(main())


def dscps(h: FakeClockNode, call_id: str) -> set[int]:
    """The DSCP of each RTP stream of the call's media session (the engine's ng query)."""
    media = h.node.media_port
    assert isinstance(media, InProcessMedia)
    return session_dscps(media.run_now("query", (call_id,)))


def session_dscps(reply: object) -> set[int]:
    """Every ``dscp`` in an ng query reply (one per leg's RTP stream)."""
    if isinstance(reply, dict):
        found = {v for k, v in reply.items() if k == b"dscp" and isinstance(v, int)}
        return found.union(*(session_dscps(v) for v in reply.values()))
    if isinstance(reply, list):
        return set().union(*(session_dscps(v) for v in reply))
    return set()


def test_the_rtp_marking_and_trace_sizes_are_those_stored_when_the_node_started(store: Store) -> None:
    """SS_QOS_RTP (every media offer asks the engine for it: the session's legs carry it) and
    the trace file sizes are read when the node starts, with the store's overrides of that
    moment; a change stored later reaches Node.parameters at the reload but not them."""
    basic_world(store)
    store.set_parameter("SS_QOS_RTP", 26)
    store.set_parameter("SS_TRACE_CALL_FILE_SIZE", 32)
    with fake_clock_node(store, {"SS_QOS_RTP": 10}) as h:  # the store's override wins over the file
        assert h.node.rtp_dscp == 26
        assert h.node.tracer.settings.call_file_bytes == 32 * 1024 * 1024
        h.receive(invite("before"))
        h.advance(0.1)
        assert dscps(h, "before") == {26}

        store.set_parameter("SS_QOS_RTP", 34)
        store.set_parameter("SS_TRACE_CALL_FILE_SIZE", 64)
        assert h.router.refresh()
        assert h.node.parameters["SS_QOS_RTP"] == 34  # the reload came
        h.receive(invite("after"))
        h.advance(0.1)
        assert dscps(h, "after") == {26}
        assert h.node.tracer.settings.call_file_bytes == 32 * 1024 * 1024

    with fake_clock_node(store) as h:  # the restart
        assert h.node.tracer.settings.call_file_bytes == 64 * 1024 * 1024
        h.receive(invite("restarted"))
        h.advance(0.1)
        assert dscps(h, "restarted") == {34}
