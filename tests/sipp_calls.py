"""SIPp calls through a node of :mod:`tests.b2bua_harness`: the setup every end-to-end call test
repeats, once.

``carrier(h, scenario, index)`` and ``customer(h, scenario, index)`` are one SIPp run each on
that party's ports of the harness's block (the carrier listening on ``carrier_ports[index]``,
the customer calling the node's number ``CALLEE``), traced and bounded by ``SIPP_TIMEOUT``;
``call(h, customer(...), carrier(...), ...)`` starts the carriers, waits until they listen,
places the customer's call, waits for every run and checks that each passed its scenario.
A test that must act while a call is up starts the runs itself (``start``) and waits with
``peers_listening``. Whatever happens, every SIPp is awaited, or cancelled and so killed by
its PID (:func:`tests.b2bua_harness.sipp`); ``ended_records`` and ``assert_nothing_leaked``
are the checks after the call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from signaling.media.control import InProcessMedia
from signaling.routing import CallRecord
from tests.b2bua_harness import Harness, Sipp, peers_listening, sipp

#: The number the customers dial (SIPp's -s: the Request-URI's user part).
CALLEE = ["-s", "12125550100"]
#: SIPp's own deadline for one run (the harness adds a hard one on top).
SIPP_TIMEOUT = 15.0
#: SIPp media ports of each party (SIPp uses mp..mp+3): carriers from ``media_base``,
#: customers from ``media_base + CUSTOMER_MEDIA``.
MEDIA_PORTS_EACH = 4
CUSTOMER_MEDIA = 10


def run(main: Coroutine[Any, Any, None], within: float = 60.0) -> None:
    """Run a test's coroutine on a fresh loop, bounded by ``within`` seconds."""
    asyncio.run(asyncio.wait_for(main, within))


def start(coro: Coroutine[Any, Any, Sipp]) -> asyncio.Task[Sipp]:
    return asyncio.ensure_future(coro)


def carrier(
    h: Harness, scenario: str = "uas_answer.xml", index: int = 0, **options: Any
) -> Coroutine[Any, Any, Sipp]:
    """Carrier ``index`` waiting for the node's call (``options``: :func:`sipp`'s, e.g. ``fill``,
    ``rtp_echo``, ``calls``)."""
    options.setdefault("trace", True)
    options.setdefault("timeout", SIPP_TIMEOUT)
    return sipp(
        scenario, port=h.carrier_ports[index], media_port=h.media_base + MEDIA_PORTS_EACH * index, **options
    )


def customer(
    h: Harness, scenario: str = "uac_basic.xml", index: int = 0, **options: Any
) -> Coroutine[Any, Any, Sipp]:
    """Customer ``index`` (its own SIP and media ports) calling ``CALLEE`` through the node;
    ``options`` as for :func:`carrier` (``extra`` replaces ``CALLEE``)."""
    options.setdefault("extra", CALLEE)
    options.setdefault("trace", True)
    options.setdefault("timeout", SIPP_TIMEOUT)
    return sipp(
        scenario,
        port=h.customer_port + index,
        target=h.target,
        media_port=h.media_base + CUSTOMER_MEDIA + MEDIA_PORTS_EACH * index,
        **options,
    )


@dataclass
class CallRun:
    """What each SIPp of one :func:`call` saw."""

    caller: Sipp
    carriers: list[Sipp]

    @property
    def carrier(self) -> Sipp:
        """The first carrier's run."""
        return self.carriers[0]


async def call(
    h: Harness,
    caller: Coroutine[Any, Any, Sipp],
    *carriers: Coroutine[Any, Any, Sipp],
    check: bool = True,
) -> CallRun:
    """Start the carriers, wait until they listen, run the caller to its end, then wait for the
    carriers; with ``check`` every run must have passed its scenario. On any error (or
    cancellation) the carriers still running are cancelled, which kills them by PID."""
    tasks = [start(c) for c in carriers]
    try:
        await peers_listening()
        caller_run = await caller
        carrier_runs = [await t for t in tasks]
    except BaseException:
        caller.close()  # never awaited when the carriers did not come up
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
        raise
    result = CallRun(caller_run, carrier_runs)
    if check:
        ok(caller=caller_run, **{f"carrier{i}": r for i, r in enumerate(carrier_runs)})
    return result


def ok(**runs: Sipp) -> None:
    """Every SIPp run passed its scenario; otherwise say which failed, with their output."""
    failed = [
        f"{who}: SIPp exited {r.returncode}\n{r.summary()}\n{_ends(r.output)}"
        for who, r in runs.items()
        if r.returncode != 0
    ]
    assert not failed, "\n\n".join(failed)


def _ends(output: str, head: int = 1000, tail: int = 3000) -> str:
    """SIPp's output, its start (where it says why it could not start) and its end (the
    scenario's counters)."""
    if len(output) <= head + tail:
        return output
    return f"{output[:head]}\n[...]\n{output[-tail:]}"


async def ended_records(h: Harness, count: int, within: float = 3.0) -> list[CallRecord]:
    """The node's records once ``count`` calls have ended (a call ends after its media teardown,
    a moment after the last SIP message); waits at most ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while len(h.node.ended_records) < count and loop.time() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.05)  # and no more than that
    assert len(h.node.ended_records) == count, h.node.ended_records
    return list(h.node.ended_records)


async def assert_nothing_leaked(h: Harness) -> None:
    """No call left in the node, no media session left in the engine (bounded wait for the
    call's teardown to finish first)."""
    for _ in range(40):
        if not h.node.calls and not await h.media_calls():
            break
        await asyncio.sleep(0.05)
    if isinstance(h.media, InProcessMedia):
        assert h.engine.session_ids() == []
    assert await h.media_calls() == []
    assert h.node.calls == {}
