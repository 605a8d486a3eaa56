"""Invalid specs and options raise a clear exception at once, naming the bad key."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from mediacore import CapacityError, MediaEngine, MediaSpecError
from tests.helpers import endpoints


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"caller": {"remote_rtp": ("127.0.0.1", 70000)}}, "caller.remote_rtp: port 70000"),
        (
            {"caller": {"remote_rtp": ("not-an-ip", 4000)}},
            'caller.remote_rtp: "not-an-ip" is not an IP address',
        ),
        ({"callee": {"remote_rtp": "127.0.0.1:4000"}}, "callee.remote_rtp: expected (host, port)"),
        ({"callee": {"dscp": 64}}, "callee.dscp: 64 is not in 0..=63"),
        ({"caller": {"latch": "sometimes"}}, 'caller.latch: "sometimes" is not'),
        ({"caller": {"colour": "blue"}}, "caller.colour: unknown key"),
        ({"ptime": 20}, "ptime: unknown key"),
        ({"rtp_timeout": 0}, "rtp_timeout: 0"),
        ({"caller": {"clock_rates": {200: 8000}}}, "caller.clock_rates: payload type 200"),
        ({"caller": {"clock_rates": {96: 0}}}, "caller.clock_rates: clock rate 0"),
        ({"caller": {"remote_rtp": ("127.0.0.1", 0)}}, "caller.remote_rtp: port 0"),
        ({"caller": []}, "caller: expected a dict"),
        ({"callee": {"comfort_noise": "yes"}}, "callee.comfort_noise: expected a bool"),
    ],
)
def test_bad_spec_names_the_key(engine: MediaEngine, spec: dict[str, object], message: str) -> None:
    with pytest.raises(MediaSpecError, match=re.escape(message)):
        engine.create_session(spec)  # type: ignore[arg-type]
    assert engine.session_ids() == []


def test_spec_errors_are_value_errors(engine: MediaEngine) -> None:
    with pytest.raises(ValueError):
        engine.create_session({"caller": {"dscp": -1}})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interface": "localhost"}, "interface"),
        ({"port_min": 20000, "port_max": 10000}, "port_min"),
        ({"port_min": 0}, "port_min"),
        ({"port_min": 30001, "port_max": 30001}, "port_min/port_max"),
        ({"workers": 0}, "workers"),
        ({"rtp_timeout": -1.0}, "rtp_timeout"),
        ({"advertise": "x"}, "advertise"),
    ],
)
def test_bad_engine_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(MediaSpecError, match=message):
        MediaEngine(**kwargs)


def test_capacity_is_refused_not_degraded(port_range) -> None:
    # Room for exactly two port pairs = one session.
    eng = MediaEngine(port_min=port_range[0], port_max=port_range[0] + 3)
    try:
        with endpoints(2) as (a, b):
            spec = {"caller": {"remote_rtp": a.addr}, "callee": {"remote_rtp": b.addr}}
            first = eng.create_session(spec)  # type: ignore[arg-type]
            with pytest.raises(CapacityError, match="no free RTP/RTCP port pair"):
                eng.create_session(spec)  # type: ignore[arg-type]
            assert eng.session_ids() == [first["id"]]
            eng.delete_session(first["id"])
            eng.create_session(spec)  # type: ignore[arg-type]
    finally:
        eng.close()


def test_worker_count_defaults_to_half_the_cores(port_range) -> None:
    eng = MediaEngine(port_min=port_range[0], port_max=port_range[1])
    try:
        assert eng.workers == max(1, (os.cpu_count() or 1) // 2)
    finally:
        eng.close()
    eng = MediaEngine(port_min=port_range[0], port_max=port_range[1], workers=3)
    try:
        assert eng.workers == 3
    finally:
        eng.close()
