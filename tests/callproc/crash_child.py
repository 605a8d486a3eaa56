"""A node under load for the crash tests: ``python -m tests.callproc.crash_child URL NODE RUN [batched]``.

Runs a StoreRouter named NODE on the store at URL (configured by the parent with
tests.callproc.world.basic_world) and makes calls without end on a fake clock that runs 10x
faster than real time: admits them, answers most, ticks, ends some. Every answered call id is
printed (after its answer is in the store) so the parent can check each got a CDR after it
killed this process with SIGKILL at a random moment.

``batched``: CDRs go through a CdrWriter (group commits on its thread). Each call it reports done
is printed (``done ID``: its CDR committed), and once the load has run a while the writer, inside
the transaction of a batch of two or more calls and before its commit, prints ``committing ID…``
and waits: the parent kills the process right then, in the middle of that batch.
"""

from __future__ import annotations

import random
import sys
import threading
import time

from signaling.callproc.cdrwriter import CdrWriter, Settlement
from signaling.store import Cdr, open_store
from tests.callproc.world import FakeNode

#: How long the writer stays inside the batch it announced (the parent kills it meanwhile), s.
HOLD_BATCH = 5.0

_say_lock = threading.Lock()


def say(line: str) -> None:
    """One whole line to the parent. The loop and the CDR writer's thread both report: ``print``
    writes the text and its newline separately, so two threads' lines could interleave into one
    ("answered Xdone Y") and the parent would misread both."""
    with _say_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def main(url: str, node_name: str, run: str, mode: str = "") -> None:
    store = open_store(url, migrate=False)
    rng = random.Random()
    writer = None
    if mode == "batched":
        writer = CdrWriter(store)
        started = time.monotonic()
        warm_up = rng.uniform(0.3, 1.0)

        def before_commit(batch: list[Settlement]) -> None:
            if len(batch) >= 2 and time.monotonic() - started > warm_up:
                say("committing " + " ".join(s.cdr.call_id for s in batch))
                time.sleep(HOLD_BATCH)

        writer.before_commit = before_commit
        # a pause after each batch, outside any transaction, so that calls pile up into batches
        # of several even when commits are quick (the tests' PostgreSQL runs without fsync)
        writer.notify = lambda: time.sleep(0.02)
        writer.start()
    node = FakeNode.on(store, node=node_name, tick=1.0, cdr_writer=writer)

    def done(call_id: str, cdr: Cdr) -> None:
        say(f"done {call_id}")

    node.router.on_call_done(done)
    live: list[str] = []
    n = 0
    say("ready")
    while True:
        n += 1
        call_id = f"{node_name}-{run}-{n}"
        if node.admit(call_id, "12125550100").rejection is None:
            node.answer(call_id)
            say(f"answered {call_id}")
            live.append(call_id)
        if live and rng.random() < 0.4:
            node.end(live.pop(rng.randrange(len(live))))
        node.advance(rng.uniform(0.05, 0.5))
        node.router.collect()
        time.sleep(0.005)


if __name__ == "__main__":
    main(*sys.argv[1:])
