"""A node under load for the crash test: ``python -m tests.callproc.crash_child URL NODE RUN``.

Runs a StoreRouter named NODE on the store at URL (configured by the parent with
tests.callproc.world.basic_world) and makes calls without end on a fake clock that runs 10x
faster than real time: admits them, answers most, ticks, ends some. Every answered call id is
printed (after its answer is in the store) so the parent can check each got a CDR after it
killed this process with SIGKILL at a random moment.
"""

from __future__ import annotations

import random
import sys
import time

from signaling.store import open_store
from tests.callproc.world import FakeNode


def main(url: str, node_name: str, run: str) -> None:
    store = open_store(url, migrate=False)
    node = FakeNode.on(store, node=node_name, tick=1.0)
    rng = random.Random()
    live: list[str] = []
    n = 0
    print("ready", flush=True)
    while True:
        n += 1
        call_id = f"{node_name}-{run}-{n}"
        if node.admit(call_id, "12125550100").rejection is None:
            node.answer(call_id)
            print(f"answered {call_id}", flush=True)
            live.append(call_id)
        if live and rng.random() < 0.4:
            node.end(live.pop(rng.randrange(len(live))))
        node.advance(rng.uniform(0.05, 0.5))
        time.sleep(0.005)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
