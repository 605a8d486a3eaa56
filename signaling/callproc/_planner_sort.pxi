# Included by _planner.pyx (one extension module): the order of the candidates, the documented
# sort key compared step by step on the Facts structs.


cdef int _compare(Planner p, Facts *a, Facts *b) except? -2:
    """-1, 0, 1: ``a``'s key against ``b``'s, as the flat key tuples compare."""
    cdef Gateway *ga = &p.gw[a.slot]
    cdef Gateway *gb = &p.gw[b.slot]
    cdef int k, step
    cdef int128 left, right
    if ga.protect != gb.protect:
        return -1 if ga.protect < gb.protect else 1
    if a.strategy != b.strategy:
        return -1 if a.strategy < b.strategy else 1
    if a.prefix_length != b.prefix_length:  # the longer first
        return -1 if a.prefix_length > b.prefix_length else 1
    if ga.priority != gb.priority:
        return -1 if ga.priority < gb.priority else 1
    for k in range(p.step_count):
        step = p.steps[k]
        if step == STEP_LINE_USAGE:
            if a.usage != b.usage:
                return -1 if a.usage < b.usage else 1
            if ga.weight == 0 or gb.weight == 0:  # no weight: calls today ÷ weight is infinite
                if ga.weight != gb.weight:
                    return 1 if ga.weight == 0 else -1
            else:
                left = <int128>a.today * gb.weight
                right = <int128>b.today * ga.weight
                if left != right:
                    return -1 if left < right else 1
        elif step == STEP_COST:
            if a.no_cost != b.no_cost:
                return -1 if a.no_cost < b.no_cost else 1
            if not a.no_cost:
                if PyObject_RichCompareBool(<object>a.cost, <object>b.cost, Py_LT):
                    return -1
                if PyObject_RichCompareBool(<object>b.cost, <object>a.cost, Py_LT):
                    return 1
        elif step == STEP_ASR:
            if a.demoted != b.demoted:
                return -1 if a.demoted < b.demoted else 1
            if a.asr_key != b.asr_key:
                return -1 if a.asr_key < b.asr_key else 1
        else:
            if a.acd_key != b.acd_key:
                return -1 if a.acd_key < b.acd_key else 1
    if ga.id != gb.id:
        return -1 if ga.id < gb.id else 1
    return 0


cdef int _merge_sort(Planner p, Facts *facts, int *items, int *scratch, int count) except -1:
    """Sort ``items`` (indexes into ``facts``) by :func:`_compare`, stably, bottom-up."""
    cdef int width = 1
    cdef int start, middle, end, i, j, k
    cdef int *source = items
    cdef int *target = scratch
    cdef int *swap
    while width < count:
        start = 0
        while start < count:
            middle = min(start + width, count)
            end = min(start + 2 * width, count)
            i, j, k = start, middle, start
            while i < middle and j < end:
                if _compare(p, &facts[source[j]], &facts[source[i]]) < 0:
                    target[k] = source[j]
                    j += 1
                else:
                    target[k] = source[i]
                    i += 1
                k += 1
            while i < middle:
                target[k] = source[i]
                i += 1
                k += 1
            while j < end:
                target[k] = source[j]
                j += 1
                k += 1
            start += 2 * width
        swap = source
        source = target
        target = swap
        width *= 2
    if source != items:
        for i in range(count):
            items[i] = source[i]
    return 0
