# Hand-written stub of the native module (rust/mediacore-py); checked by mypy.stubtest.
from types import TracebackType
from typing import final

from mediacore.types import (
    EchoCancelSpec,
    EngineTotals,
    JitterBufferSpec,
    MediaEvent,
    SessionInfo,
    SessionSpec,
    SessionStats,
)

__all__ = ["Engine", "__version__"]
__version__: str

@final
class Engine:
    def __new__(
        cls,
        interface: str = "127.0.0.1",
        port_min: int = 10000,
        port_max: int = 20000,
        workers: int | None = None,
        rtp_timeout: float = 30.0,
        hold_timeout: float = 3600.0,
        advertise: str | None = None,
        transcode_slots: int = 1000,
        cpu_guard: float = 0.85,
        jitter_buffer: JitterBufferSpec | None = None,
        echo_cancel: EchoCancelSpec | None = None,
    ) -> Engine: ...
    def create_session(self, spec: SessionSpec) -> SessionInfo: ...
    def update_session(self, session_id: int, spec: SessionSpec) -> None: ...
    def query_session(self, session_id: int) -> SessionStats: ...
    def delete_session(self, session_id: int) -> SessionStats: ...
    def session_ids(self) -> list[int]: ...
    def event_fd(self) -> int: ...
    def drain_events(self, max_events: int = 1024) -> list[MediaEvent]: ...
    def totals(self) -> EngineTotals: ...
    def serve_ng(self, listen: str) -> tuple[str, int]: ...
    def stop_ng(self) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def workers(self) -> int: ...
    @property
    def advertised_address(self) -> str: ...
    def __enter__(self) -> Engine: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...
