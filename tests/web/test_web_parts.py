"""The web manager's small parts: the challenge store (one use, expiry, bounded), CPU/RAM/disk
from /proc files, the SVG charts (labels escaped, values placed), the load history."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from signaling.web.challenge import Challenges
from signaling.web.charts import bar_chart, line_chart, sparkline_points
from signaling.web.history import History
from signaling.web.sysstats import CpuSampler, band, disk, memory

_Q = re.compile(r"What is (\w+) (plus|minus) (\w+)\?")
_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def _solve(question: str) -> str:
    found = _Q.fullmatch(question)
    assert found is not None, question
    a, b = (_WORDS.index(t) if t in _WORDS else int(t) for t in (found.group(1), found.group(3)))
    return str(a + b if found.group(2) == "plus" else a - b)


def test_a_challenge_is_answered_once_and_expires() -> None:
    challenges = Challenges(ttl=60.0, max_pending=3)
    c = challenges.issue(1000.0)
    assert challenges.verify(c.id, _solve(c.question), 1010.0)
    assert not challenges.verify(c.id, _solve(c.question), 1010.0)  # used up
    late = challenges.issue(1000.0)
    assert not challenges.verify(late.id, _solve(late.question), 1061.0)  # expired
    wrong = challenges.issue(1000.0)
    assert not challenges.verify(wrong.id, "-1", 1001.0)
    assert not challenges.verify(wrong.id, _solve(wrong.question), 1001.0)  # a wrong guess used it
    for _ in range(10):
        challenges.issue(1000.0)
    assert len(challenges) == 3  # bounded: the oldest are dropped


def test_cpu_ram_and_disk_from_proc_files(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n")
    cpu = CpuSampler(tmp_path)
    assert cpu.percent() == 20.0  # since boot: busy 200 of 1000 jiffies
    (tmp_path / "stat").write_text("cpu  400 0 100 1000 100 0 0 0 0 0\n")
    assert cpu.percent() == 50.0  # the difference: 300 busy of 600
    (tmp_path / "meminfo").write_text("MemTotal: 1024000 kB\nMemFree: 1000 kB\nMemAvailable: 256000 kB\n")
    assert memory(tmp_path) == (75.0, 750, 1000)
    assert CpuSampler(tmp_path / "none").percent() is None
    used = disk(str(tmp_path))
    assert used is not None and 0.0 <= used[0] <= 100.0
    assert (band("cpu", 55), band("cpu", 70), band("cpu", 85), band("disk", None)) == (
        "normal",
        "warning",
        "critical",
        "normal",
    )


def test_charts_escape_labels_and_place_values() -> None:
    svg = bar_chart(["<b>", "day 2"], [("income", [Decimal("5"), Decimal("10")])], title="T & <x>")
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "T &amp; &lt;x&gt;" in svg
    heights = [float(h) for h in re.findall(r'<rect x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)"', svg)]
    assert heights[1] == 2 * heights[0] > 0  # 10 is twice 5 on the same axis
    line = line_chart([1, None, 3], title="cps")
    assert line.count("<circle") == 2  # a gap splits the line
    assert sparkline_points([0, 2]) == "0.0,30.0 120.0,0.0"


def test_history_rates_and_buckets() -> None:
    h = History(keep=100)
    h.sample(1000.0, 1, 10, 5.0)
    h.sample(1001.0, 2, 13, 7.0)  # 3 calls started in one second
    h.sample(1002.0, 4, 13, None)
    assert [s.cps for s in h.samples] == [0.0, 3.0, 0.0]
    (bucket,) = h.buckets(10.0, 1, 1002.5)
    assert (bucket.concurrency, bucket.cps, bucket.cpu) == (4, 1.0, 6.0)
