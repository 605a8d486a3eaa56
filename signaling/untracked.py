"""Keeping the configuration snapshot out of the cyclic garbage collector's walks.

CPython frees an object when its last reference goes (reference counting); the cyclic collector
only exists to find groups of objects that refer to each other in a ring. To do that it walks
every *tracked* container object (class instances, lists, dicts, tuples holding such objects) of
the generation it collects, and a full collection walks all of them. A million-prefix snapshot
holds about 200,000 such objects at load (rate terms, tariffs) and gains one per rate, vendor
choice and cached price as calls use them: a full collection then stalls the event loop for
0.1-0.5 s (bench/routing.py measures it).

**The rule.** Objects that live as long as a snapshot and *cannot be part of a reference ring*
are untracked (``PyObject_GC_UnTrack``, what CPython itself does for tuples and dicts that hold
only atomic values) as they are made: the rate tables' entries and version lists, their terms,
tariffs and the rates made from them, the routing caches' entries (vendor choices, prices, the
compiled planner's candidate sets). They cannot form a ring because they are immutable
records (frozen dataclasses, :class:`~fractions.Fraction`, tuples) that refer only to values
made before them — strings, numbers, Decimals, datetimes, other such records — and the dicts
and lists holding them are never given a reference back. Untracking never frees anything early:
an untracked object is simply not looked at, and what it refers to counts as referenced from
outside. When a reload replaces the snapshot, the old one is freed by reference counting once
the last call admitted with it lets go: nothing to unfreeze, nothing that outlives it.

Not taken: ``gc.freeze()`` after each load. It freezes *everything* alive at that moment (calls,
transactions, the loop's own objects), so ring garbage made of those would never be collected,
unless each reload unfroze and ran a full collection, the very pause this avoids.

Without the compiled helper (``signaling/_untrack.pyx`` not built) :data:`ENABLED` is False,
nothing is untracked and full collections walk the snapshot as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

_T = TypeVar("_T")

try:
    from signaling._untrack import untrack, untrack_all, untrack_tree

    ENABLED = True
except ImportError:  # the extension is not built: keep everything tracked
    ENABLED = False

    def untrack(obj: _T) -> _T:
        return obj

    def untrack_all(objects: Iterable[object]) -> None:
        return None

    def untrack_tree(obj: _T) -> _T:
        return obj


__all__ = ["ENABLED", "untrack", "untrack_all", "untrack_tree"]
