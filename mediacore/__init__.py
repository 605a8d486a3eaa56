"""mediacore: the compiled media engine of the softswitch, seen from Python.

The engine relays RTP/RTCP for two-leg sessions in Rust worker threads. Python crosses into it
once per call event (create, update, query, delete) and drains events in batches from a file
descriptor; no packet ever enters Python.
"""

from __future__ import annotations

from mediacore._core import Engine as MediaEngine
from mediacore._core import __version__
from mediacore.errors import (
    CapacityError,
    DtmfError,
    MediaError,
    MediaSpecError,
    TranscodingCapacityError,
    UnknownSessionError,
)
from mediacore.types import (
    DtmfMode,
    EngineTotals,
    LegSpec,
    LegStats,
    MediaEvent,
    SessionInfo,
    SessionSpec,
    SessionStats,
)

__all__ = [
    "CapacityError",
    "DtmfError",
    "DtmfMode",
    "EngineTotals",
    "LegSpec",
    "LegStats",
    "MediaEngine",
    "MediaError",
    "MediaEvent",
    "MediaSpecError",
    "SessionInfo",
    "SessionSpec",
    "SessionStats",
    "TranscodingCapacityError",
    "UnknownSessionError",
    "__version__",
]
