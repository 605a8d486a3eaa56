"""Exceptions raised by the media engine.

They live in Python (the native module raises these classes) so that each can also subclass the
builtin a caller would naturally catch: a bad spec is a ``ValueError``, an unknown session a
``KeyError``.
"""

from __future__ import annotations

__all__ = [
    "CapacityError",
    "DtmfError",
    "MediaError",
    "MediaSpecError",
    "TranscodingCapacityError",
    "UnknownSessionError",
]


class MediaError(RuntimeError):
    """Base class of every media engine error."""


class MediaSpecError(MediaError, ValueError):
    """A session spec or engine option is invalid; the message names the offending key."""


class CapacityError(MediaError):
    """The engine refused a session it cannot carry (admission control, e.g. no free ports)."""


class TranscodingCapacityError(CapacityError):
    """No transcoding slot is free, or the media workers are too busy to take another
    transcoding session without degrading the calls they carry (the message says which)."""


class DtmfError(MediaError):
    """Digits cannot be played the way the leg's mode asks (e.g. in-band tones into a relayed
    stream whose codec the engine does not write); the message says why."""


class UnknownSessionError(MediaError, KeyError):
    """No session with that id: it was deleted, or never created."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
