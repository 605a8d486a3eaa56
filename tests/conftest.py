from __future__ import annotations

from collections.abc import Iterator

import pytest

from mediacore import MediaEngine

#: Each test's engine gets its own port window so a slow release elsewhere cannot interfere.
_next_base = [52000]


@pytest.fixture
def port_range() -> tuple[int, int]:
    """200 ports of 52000-64999, taken in turn (wrapping: each test closes its engine)."""
    base = _next_base[0]
    _next_base[0] = 52000 + (base - 52000 + 200) % 13000
    return base, base + 199


@pytest.fixture
def engine(port_range: tuple[int, int]) -> Iterator[MediaEngine]:
    eng = MediaEngine(interface="127.0.0.1", port_min=port_range[0], port_max=port_range[1], workers=2)
    try:
        yield eng
    finally:
        eng.close()
