"""FORWARD_SIGNAL_REWRITE_SEQUENCE (the caller number pool's order: 0 random, 1 in turn) set in
the store or through the REST API reaches a running node's pool at the router's next refresh
(what RouterDriver runs every REFRESH_INTERVAL), as the other store parameters reach routing;
without a stored value the node's file decides. Spec transcoding-dtmf-agents-webmanager-callerid
§11 behaviour 56: "pool {A, B}, FORWARD_SIGNAL_REWRITE_SEQUENCE=1 → A, B, A, …; =0 → random".

A real :class:`Node` (not started: the pool is its own, per routing gateway) takes the routes a
:class:`StoreRouter` admits over SQLite, as its calls do (``Call._caller_for``)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediacore import MediaEngine
from signaling.b2bua.node import Node
from signaling.config import load
from signaling.media.control import InProcessMedia
from tests.api.conftest import Clock
from tests.api.conftest_app import Api, make_api
from tests.b2bua_harness import BLOCK, port_block
from tests.callproc.world import FakeNode, basic_world

#: ten numbers: a random draw that happens to go in turn for 30 calls has odds of 1e-30
POOL = tuple(f"55501{i:02d}" for i in range(10))
NAME = "FORWARD_SIGNAL_REWRITE_SEQUENCE"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path, Clock())


@contextlib.contextmanager
def node_on(api: Api, file_sequence: int) -> Iterator[tuple[Node, FakeNode]]:
    """A node whose file says ``file_sequence``, routing through the API's store."""
    basic_world(
        api.store, balance="100", gateways=({"name": "pooled", "prefixes": ("1",), "caller_pool": POOL},)
    )
    with port_block() as base:
        cfg = load({"sip": {"listen": f"127.0.0.1:{base}"}, "parameters": {NAME: file_sequence}})
        engine = MediaEngine(interface="127.0.0.1", port_min=base + 60, port_max=base + BLOCK - 1, workers=1)
        media = InProcessMedia(engine)
        try:
            calls = FakeNode.on(api.store, parameters=cfg.parameters)
            yield Node(cfg, media, calls.router), calls
        finally:
            media.close()
            engine.close()


def draw(node: Node, calls: FakeNode, count: int) -> tuple[list[str], list[int | None]]:
    """``count`` calls one after another, each given a pool number by the node: the numbers, and
    the order each call's route carried."""
    numbers: list[str] = []
    orders: list[int | None] = []
    for _ in range(count):
        call_id = f"call-{len(calls.records)}"
        admission = calls.admit(call_id, "12125550100")
        assert admission.rejection is None, admission.rejection
        route = calls.try_route(call_id)
        pool = node.caller_pool(route)
        assert pool is not None
        number = pool.acquire()
        assert number is not None
        numbers.append(number)
        orders.append(route.caller_pool_sequence)
        pool.release(number)
        calls.end(call_id, status=503)
    return numbers, orders


def in_turn(numbers: list[str]) -> bool:
    return all(POOL.index(b) == (POOL.index(a) + 1) % len(POOL) for a, b in itertools.pairwise(numbers))


def test_the_stored_order_reaches_the_pool_at_the_next_refresh(api: Api) -> None:
    with node_on(api, file_sequence=0) as (node, calls):
        numbers, orders = draw(node, calls, 30)
        assert orders == [0] * 30 and not in_turn(numbers)  # the file's: random
        api.store.set_parameter(NAME, 1)
        _, orders = draw(node, calls, 3)
        assert orders == [0] * 3  # not before the refresh: calls never wait for the store
        assert calls.router.refresh()
        numbers, orders = draw(node, calls, 2 * len(POOL))
        assert orders == [1] * 20
        assert numbers == list(POOL) * 2  # A, B, C, … from the first, twice round


def test_an_order_set_and_reset_through_the_api_takes_effect_at_the_next_refresh(api: Api) -> None:
    admin = api.login("root")
    with node_on(api, file_sequence=1) as (node, calls):
        numbers, _ = draw(node, calls, 12)
        assert numbers == [*POOL, *POOL[:2]]  # the file's: in turn
        put = admin.put(f"/api/v1/parameters/{NAME}", json={"value": 0})
        assert put.status_code == 200 and put.json()["stored"] == "0", put.text
        assert admin.put(f"/api/v1/parameters/{NAME}", json={"value": 2}).status_code == 422
        assert calls.router.refresh()
        numbers, orders = draw(node, calls, 30)
        assert orders == [0] * 30 and not in_turn(numbers)
        assert set(numbers) <= set(POOL)
        reset = admin.delete(f"/api/v1/parameters/{NAME}")
        assert reset.status_code == 200 and reset.json()["takes_effect"] == "reload", reset.text
        assert calls.router.refresh()
        numbers, orders = draw(node, calls, 3)
        # the file's order again; in turn from where the pool's turn had got to (its numbers in
        # use and its turn are kept across changes)
        assert orders == [1] * 3 and numbers == [POOL[2], POOL[3], POOL[4]]
