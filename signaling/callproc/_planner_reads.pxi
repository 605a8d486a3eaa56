# Included by _planner.pyx (one extension module): reading a call's inputs — the windows'
# current segment, the number's prefixes made once.


cdef struct Segment:
    # a window length and int(now // length), the current segment's index (a new reference)
    double length
    PyObject *index


cdef inline bint _current(tuple cached, length, now, Segment *segment) except -1:
    """Whether ``cached`` (a quality.Window cache: (segment index, value)) is the window's
    value now: its index is the current segment's, int(now // length) (the test the window's
    method makes)."""
    if not (PyFloat_CheckExact(length) and PyFloat_AS_DOUBLE(length) == segment.length):
        index = int(now // length)
        Py_XDECREF(segment.index)
        Py_INCREF(index)
        segment.index = <PyObject *>index
        segment.length = PyFloat_AsDouble(length) if PyFloat_CheckExact(length) else -1.0
    return PyObject_RichCompareBool(<object>PyTuple_GET_ITEM(cached, 0), <object>segment.index, Py_EQ)


cdef inline void _forget(Segment *segment):
    Py_XDECREF(segment.index)
    segment.index = NULL


cdef inline str _prefix(str number, Py_ssize_t length, list prefixes):
    """``number[:length]``, made once per call (``prefixes``: the call's, None where not made)."""
    if length >= PREFIX_MEMO:
        return number[:length]
    prefix = <object>PyList_GET_ITEM(prefixes, length)
    if prefix is None:
        prefix = number[:length]
        prefixes[length] = prefix
    return prefix
