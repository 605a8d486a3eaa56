"""The alarm page's source: any object whose ``snapshot(history)`` returns the alarms as plain
data — ``{"active": [alarm, ...], "history": [event, ...]}``, each alarm a mapping with ``kind``,
``subject``, ``severity``, ``message``, ``raised_at`` and ``cleared_at`` (Unix times), each history
event the same plus ``action`` ("raised", "changed", "cleared") and ``at`` — as the node's alarm
board gives it (signaling.observe). Nothing here imports that board: the web manager reads the
data, so either side can change its internals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from signaling.web.app import AlarmView

#: The reference's names of the alarm kinds (web manager §7.8), where it names them.
NAMES = {
    "gateway_down": "Vendor Unreachable",
    "asr_low": "Low ASR Detected",
    "balance_low": "Balance Low",
    "cdr_backlog": "CDR Queue Backlog",
    "duration_too_long": "Call Duration Too Long",
    "cpu_high": "High CPU Usage",
    "memory_high": "Memory Exhaustion",
    "disk_full": "Disk Space Low",
    "disk_io_high": "Disk I/O High",
    "scanner": "SIP Scanner Detected",
    "flow_table_full": "Flow Table Full",
}


def _view(item: Mapping[str, Any], *, action: str = "") -> AlarmView:
    kind = str(item.get("kind", ""))
    at = item.get("at")
    return AlarmView(
        name=NAMES.get(kind, kind.replace("_", " ").capitalize()),
        severity=str(item.get("severity", "")),
        subject=str(item.get("subject", "")),
        message=str(item.get("message", "")),
        raised_at=float(item.get("raised_at") or 0.0),
        cleared_at=float(item["cleared_at"]) if item.get("cleared_at") is not None else None,
        kind=kind,
        action=action,
        at=float(at) if at is not None else None,
    )


class SnapshotAlarms:
    """:class:`~signaling.web.app.AlarmFeed` over a ``snapshot(history)`` callable."""

    def __init__(self, snapshot: Callable[[int], Mapping[str, Any]]) -> None:
        self._snapshot = snapshot

    def current(self) -> Sequence[AlarmView]:
        return [_view(a) for a in self._snapshot(0).get("active", [])]

    def history(self, limit: int) -> Sequence[AlarmView]:
        events = self._snapshot(limit).get("history", [])
        return [_view(e, action=str(e.get("action", ""))) for e in events]
