# cython: language_level=3
# Taking long-lived acyclic objects out of the cyclic garbage collector's lists; the rule of
# when that is right, and the pure-Python fallback, are in signaling/untracked.py.

from cpython.object cimport PyObject

cdef extern from "Python.h":
    int PyObject_IS_GC(PyObject *o)
    int PyObject_GC_IsTracked(PyObject *o)
    void PyObject_GC_UnTrack(void *op)
    int PyTuple_CheckExact(PyObject *o)
    int PyList_CheckExact(PyObject *o)
    int PyDict_CheckExact(PyObject *o)


cdef inline void _untrack(PyObject *o):
    if PyObject_IS_GC(o) and PyObject_GC_IsTracked(o):
        PyObject_GC_UnTrack(o)


def untrack(obj):
    """``obj`` no longer tracked by the cyclic collector; returns ``obj``."""
    _untrack(<PyObject *>obj)
    return obj


def untrack_all(objects):
    """:func:`untrack` each object of an iterable."""
    for obj in objects:
        _untrack(<PyObject *>obj)


cdef void _tree(object obj) except *:
    cdef PyObject *p = <PyObject *>obj
    if not PyObject_IS_GC(p):
        return
    _untrack(p)
    if PyTuple_CheckExact(p) or PyList_CheckExact(p):
        for item in obj:
            _tree(item)
    elif PyDict_CheckExact(p):
        for item in (<dict>obj).values():
            _tree(item)


def untrack_tree(obj):
    """``obj`` untracked and, inside plain tuples, lists and dict values, every object it holds
    (other objects are untracked themselves, not what they refer to); returns ``obj``."""
    _tree(obj)
    return obj
