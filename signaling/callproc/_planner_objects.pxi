# Included by _planner.pyx (one extension module): making and reading the slots of dataclass
# instances from C, as their member descriptors do.

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        const char *name
        int type
        Py_ssize_t offset
        int flags

    ctypedef struct PyMemberDescrObject:
        PyMemberDef *d_member

    enum:
        T_OBJECT_EX
        READONLY


@cython.final
cdef class _Maker:
    """Makes instances of a slots dataclass with exactly ``names`` as fields and no
    ``__post_init__``: allocated by its type, each field stored in its slot (what the slot's
    member descriptor does, which is what ``__init__`` and ``object.__setattr__`` call)."""

    cdef PyTypeObject *tp
    cdef object cls
    cdef Py_ssize_t offsets[MAX_FIELDS]
    cdef Py_ssize_t n

    def __init__(self, cls, tuple names):
        fields = tuple(f.name for f in dataclasses.fields(cls))
        if fields != names:
            raise TypeError(f"{cls.__name__} has the fields {fields}, the compiled planner expects {names}")
        if hasattr(cls, "__post_init__"):
            raise TypeError(f"{cls.__name__} has a __post_init__ the compiled planner would skip")
        if len(names) > MAX_FIELDS:
            raise TypeError(f"{cls.__name__} has more than {MAX_FIELDS} fields")
        cdef PyMemberDef *member
        for i, name in enumerate(names):
            d = cls.__dict__[name]
            if type(d) is not MemberDescriptorType or d.__objclass__ is not cls:
                raise TypeError(f"{cls.__name__}.{name} is not a slot of its own")
            member = (<PyMemberDescrObject *>d).d_member
            if member.type != T_OBJECT_EX or member.flags & READONLY:
                raise TypeError(f"{cls.__name__}.{name} is not a plain object slot")
            self.offsets[i] = member.offset
        self.cls = cls
        self.tp = <PyTypeObject *>cls
        self.n = len(names)

    cdef object make(self, PyObject **values):
        cdef object obj = self.tp.tp_new(<type>self.cls, <PyObject *>_EMPTY, NULL)
        cdef Py_ssize_t i
        cdef PyObject **slot
        for i in range(self.n):
            slot = <PyObject **>(<char *><PyObject *>obj + self.offsets[i])
            Py_INCREF(<object>values[i])
            Py_XDECREF(slot[0])
            slot[0] = values[i]
        return obj


@cython.final
cdef class _Slots:
    """Reads the slots ``names`` of instances of exactly ``cls`` (what their member descriptors
    read), for the per-candidate reads of objects the planner does not own."""

    cdef PyTypeObject *tp
    cdef Py_ssize_t offsets[MAX_FIELDS]

    def __init__(self, cls, tuple names):
        cdef PyMemberDef *member
        for i, name in enumerate(names):
            d = cls.__dict__.get(name)
            if type(d) is not MemberDescriptorType or d.__objclass__ is not cls:
                raise TypeError(f"{cls.__name__}.{name} is not a slot of its own")
            member = (<PyMemberDescrObject *>d).d_member
            if member.type != T_OBJECT_EX:
                raise TypeError(f"{cls.__name__}.{name} is not a plain object slot")
            self.offsets[i] = member.offset
        self.tp = <PyTypeObject *>cls

    cdef inline bint holds(self, obj):
        return <PyTypeObject *>Py_TYPE(obj) == self.tp

    cdef inline object read(self, obj, int i):
        """Slot ``i`` of ``obj`` (``holds(obj)`` must be true); AttributeError when unset."""
        cdef PyObject *value = (<PyObject **>(<char *><PyObject *>obj + self.offsets[i]))[0]
        if value == NULL:
            raise AttributeError(f"slot {i} of {type(obj).__name__} is not set")
        return <object>value
