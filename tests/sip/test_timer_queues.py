"""TimerQueues hands entries out exactly as one binary heap of (deadline, seq, key, name) would."""

from __future__ import annotations

import heapq
import random

import pytest

from signaling.sip.timer_queues import MAX_QUEUES, TimerQueues


class HeapModel:
    """The structure TimerQueues replaced: one heap, seq counted per push."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, int, str]] = []
        self.seq = 0

    def push(self, deadline: float, key: int, name: str) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (deadline, self.seq, key, name))


def drive(rng: random.Random, delays: list[float], steps: int, clock_back: float) -> None:
    queues: TimerQueues[int] = TimerQueues()
    model = HeapModel()
    now = 0.0
    for i in range(steps):
        op = rng.random()
        if op < 0.55:
            delay = rng.choice(delays)
            queues.push(now + delay, delay, i, "T")
            model.push(now + delay, i, "T")
        elif op < 0.75:
            due = queues.pop_due(now)
            expected = heapq.heappop(model.heap) if model.heap and model.heap[0][0] <= now else None
            assert due == expected
        elif op < 0.85 and model.heap:
            assert queues.pop() == heapq.heappop(model.heap)
        else:
            assert queues.first() == (model.heap[0] if model.heap else None)
        assert len(queues) == len(model.heap)
        # time goes on, and now and then (a sans-IO caller's clock) back
        now += rng.choice((0.0, 0.01, 0.2, 1.0))
        if rng.random() < clock_back:
            now = max(0.0, now - rng.choice((0.5, 3.0, 40.0)))
    while model.heap:
        assert queues.pop() == heapq.heappop(model.heap)
    assert queues.first() is None and len(queues) == 0
    with pytest.raises(IndexError):
        queues.pop()


@pytest.mark.parametrize("seed", range(12))
def test_same_order_as_one_heap_with_the_transaction_layers_delays(seed: int) -> None:
    # the delays a transaction layer arms: T1 doublings, 64*T1, K, trying, G capped at T2
    delays = [0.5, 1.0, 2.0, 4.0, 32.0, 5.0, 0.2, 0.0]
    drive(random.Random(seed), delays, 4000, clock_back=0.0)


@pytest.mark.parametrize("seed", range(6))
def test_same_order_when_the_clock_goes_back(seed: int) -> None:
    drive(random.Random(100 + seed), [0.5, 4.0, 32.0], 4000, clock_back=0.05)


@pytest.mark.parametrize("seed", range(4))
def test_same_order_with_more_delays_than_queues(seed: int) -> None:
    rng = random.Random(200 + seed)
    delays = [round(rng.uniform(0.1, 60.0), 3) for _ in range(MAX_QUEUES * 2)]
    drive(rng, delays, 6000, clock_back=0.01)


def test_equal_deadlines_come_out_in_the_order_pushed() -> None:
    queues: TimerQueues[str] = TimerQueues()
    queues.push(32.0, 32.0, "a", "B")  # armed at 0 for 32 s
    queues.push(32.0, 31.5, "b", "F")  # armed at 0.5 for 31.5 s: the same instant
    queues.push(32.0, 32.0, "c", "B")
    assert [queues.pop()[2] for _ in range(3)] == ["a", "b", "c"]


def test_pop_due_leaves_what_is_not_due() -> None:
    queues: TimerQueues[str] = TimerQueues()
    queues.push(5.0, 5.0, "k", "K")
    queues.push(0.5, 0.5, "a", "A")
    assert queues.pop_due(0.4) is None
    assert queues.pop_due(0.5) == (0.5, 2, "a", "A")
    assert queues.pop_due(4.9) is None
    assert queues.first() == (5.0, 1, "k", "K")
    assert len(queues) == 1
