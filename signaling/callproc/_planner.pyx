# cython: language_level=3, boundscheck=False, initializedcheck=False
"""The compiled route planner: :func:`signaling.callproc.routes.plan_routes_python` (the
reference, in Python), the routes admission makes from its plan and the customer's rate, done
per snapshot with flat arrays of the gateways' static facts, a C struct per candidate and a C
sort (docs/routing.md "The compiled planner": what is compiled, and why).

Same inputs, same results: the plan's candidates (every field but ``order``, the reference's own
sort tuple, left empty), their order, the skipped and cut lists, the routes; the same calls, in
the same order, into what has side effects or is configurable (the vendor funds callback, dial
plans drawing random digits, ASR/ACD windows, CPS counters, lookups that make a rate).
tests/callproc/test_compiled_planner.py compares the two on random configurations and state.

Theory of operation, per call:

1. **Candidates**: the reference's step 1 (``routes._candidate_set``) remembered per (what of
   the mapping gateway decides it, the longest prefix of the number some gateway serves), as
   tuples of (gateway slot, strategy, matched prefix).
2. **Per candidate**: the vendor's rate (its table probed from the longest prefix any vendor
   table has, with the number's prefixes made once; a plain rate in effect since always is
   remembered per table prefix, anything else asks ``RateGroup.lookup``; a vendor whose period
   rate can apply goes through the reference's ``_vendor_rate``), ASR/ACD and the rates of
   response/connected (the windows' caches when current, else the window's method), lines and
   calls today, the skip reason (static facts precomputed), the key as a C struct, and the
   :class:`~signaling.callproc.routes.Candidate` made slot by slot (``_planner_objects.pxi``).
3. **Order**: a stable merge sort of the usable candidates, compared step by step exactly as the
   flat key tuple compares (``_planner_sort.pxi``), then the failover chain.
"""

import dataclasses

cimport cython
from types import MemberDescriptorType

from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_AsDouble, PyFloat_CheckExact, PyFloat_FromDouble
from cpython.list cimport PyList_GET_ITEM
from cpython.long cimport PyLong_AsLongLong
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport Py_EQ, Py_LT, Py_TYPE, PyObject, PyObject_RichCompareBool, PyTypeObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_GET_ITEM
from libc.stdint cimport int64_t
from libc.string cimport memset

from signaling.billing.rates import (
    Rate,
    RateChoice,
    RateGroup,
    RateSelection,
    RateSource,
    RateTerms,
    select_rate,
)
from signaling.callproc.quality import Window
from signaling.store import RoutingGateway
from signaling.untracked import untrack, untrack_tree

cdef extern from "Python.h":
    # borrowed, NULL when absent (an error, which str, int and tuple keys cannot raise, is raised)
    PyObject *PyDict_GetItem "PyDict_GetItemWithError" (object d, object key) except? NULL


cdef extern from *:
    ctypedef long long int128 "__int128"

#: Steps of the key between priority and the gateway id (the names of routes._step_names).
cdef enum:
    STEP_LINE_USAGE = 0
    STEP_COST = 1
    STEP_ASR = 2
    STEP_ACD = 3

#: The quality.Window fields the planner reads (the caches of asr(), acd() and rates(): (segment
#: index, value); the segment length).
WINDOW_FIELDS = ("_asr", "_acd", "_rates", "length")
cdef enum:
    W_ASR = 0
    W_ACD = 1
    W_RATES = 2
    W_LENGTH = 3

cdef enum:
    #: Fields a made class may have.
    MAX_FIELDS = 32
    #: A number's prefixes are made once per call up to this length (longer: sliced per probe).
    PREFIX_MEMO = 64
    #: Vendor tables remembered per call in an array up to this many (more: in a dict).
    SEEN_TABLES = 64

#: 2**53: integers below it are doubles exactly, so int / int in C is Python's int / int.
cdef int64_t EXACT_DOUBLE = 9007199254740992

_EMPTY = ()
_NO_VENDOR = (None, None, 0)
_UNRESOLVED = object()
_BY_LOOKUP = object()
_ZERO_USAGE = 0.0
_MINUS_INF = float("-inf")
_NEVER_DEMOTED = -100.0


include "_planner_objects.pxi"


cdef struct Gateway:
    # static facts of one routing gateway of the snapshot
    int64_t id
    int64_t priority
    int64_t weight  # 0: calls today ÷ weight is infinite
    int64_t max_calls
    int64_t max_cps
    int table  # slot of its vendor rate table, -1: none
    bint has_max_calls
    bint has_max_cps
    bint has_rate_group_id
    bint plain_vendor
    bint prepaid
    bint protect
    bint switch_until_connect
    bint static_skip
    bint callee_plan
    bint caller_plan
    Py_ssize_t strip_digits


cdef struct Facts:
    # one candidate of one call: its sort key
    int slot
    int strategy
    Py_ssize_t prefix_length
    double usage
    int64_t today
    bint usable
    bint no_cost
    PyObject *cost  # borrowed from the call's cost list
    bint demoted
    double asr_key  # -ASR, or -100.0 (not judged)
    double acd_key  # -ACD, or -inf (no data)


include "_planner_reads.pxi"


@cython.final
cdef class Planner:
    """The compiled planner of one snapshot (made by ``routes.RouteCache``). It keeps no
    reference to the snapshot or its cache (each call passes the snapshot), so a replaced
    snapshot is freed by reference counting alone."""

    cdef Gateway *gw
    cdef Py_ssize_t count
    cdef int steps[4]
    cdef int step_count
    cdef int64_t min_calls
    cdef double threshold
    cdef bint no_loss
    cdef bint has_limit
    cdef int64_t limit
    cdef Py_ssize_t longest_prefix
    cdef bint untracked
    cdef tuple names
    cdef object R  # signaling.callproc.routes
    cdef _Maker candidate
    cdef _Maker route
    cdef _Maker plan_maker
    cdef _Slots window_slots
    cdef _Slots candidate_slots
    cdef _Slots gateway_slots
    cdef _Maker choice_maker
    cdef _Maker selection_maker
    cdef object account_source
    cdef object billing_select
    cdef dict slot_of
    cdef dict sets
    cdef dict classes
    cdef dict prefix_index
    cdef tuple listing  # routing gateways with a "mapping gateway name" allow or deny list
    cdef dict vendor_choices
    cdef Py_ssize_t set_limit
    # per gateway slot
    cdef list gateways
    cdef list ids
    cdef list out_keys
    cdef list static_skips
    cdef list group_checks  # tuples of (counter key, lines, reason)
    cdef list vendor_ids
    cdef list vendor_codes
    cdef list add_prefixes
    cdef list tech_prefixes
    cdef list callee_plans
    cdef list caller_plans
    cdef list settings  # dicts: the mapping gateway's media proxy -> the route's other fields
    # per vendor rate table slot
    cdef list tables  # the RateGroup
    cdef list table_entries  # its prefix table
    cdef list table_longest
    #: prefix -> the vendor result (choice, price, cost order) of a plain rate in effect since
    #: always, _UNRESOLVED (not asked yet) or _BY_LOOKUP (anything else: asked each time); the
    #: same keys as the prefix table, which never gains or loses one after it is built
    cdef list table_results
    cdef Py_ssize_t table_count
    cdef dict vendor_prefixes  # every prefix of every vendor table (the values: None)
    cdef Py_ssize_t vendor_longest

    def __cinit__(self):
        self.gw = NULL

    def __dealloc__(self):
        PyMem_Free(self.gw)

    def __init__(self, snap, cache):
        from signaling.callproc import routes as R  # (a cycle at import: routes makes planners)
        from signaling.routing import Route

        self.R = R
        p = snap.parameters
        self.names = cache.step_names
        self.step_count = 0
        codes = {"line usage": STEP_LINE_USAGE, "cost": STEP_COST, "asr": STEP_ASR, "acd": STEP_ACD}
        for name in self.names[4:-1]:
            self.steps[self.step_count] = codes[name]
            self.step_count += 1
        self.min_calls = int(str(p["SS_GATEWAY_ASR_MIN_CALLS"]))
        self.threshold = float(int(str(p["SS_GATEWAY_ASR_THRESHOLD"])))
        self.no_loss = bool(p["SS_GATEWAY_NO_LOSS_ROUTE"])
        self.has_limit = cache.switch_limit is not None
        self.limit = cache.switch_limit if self.has_limit else 0
        self.longest_prefix = snap.longest_prefix
        self.untracked = snap.untracked
        self.candidate = _Maker(R.Candidate, R.CANDIDATE_FIELDS)
        self.route = _Maker(Route, R.ROUTE_FIELDS)
        self.plan_maker = _Maker(R.RoutePlan, ("ordered", "skipped", "cut", "step_names"))
        self.window_slots = _Slots(Window, WINDOW_FIELDS)
        self.candidate_slots = _Slots(R.Candidate, ("gateway",))
        self.gateway_slots = _Slots(RoutingGateway, ("id",))
        self.choice_maker = _Maker(
            RateChoice, ("source", "group", "rate", "connected", "response", "period", "multiplier")
        )
        self.selection_maker = _Maker(RateSelection, ("number", "at", "choice", "candidates"))
        self.account_source = RateSource.ACCOUNT
        self.billing_select = select_rate
        self.sets = {}
        self.classes = {}
        self.prefix_index = snap.prefix_index
        self.listing = tuple(g.id for g in snap.routing.values() if g.mapping_gateway_mode != "all")
        self.set_limit = R.CANDIDATE_SETS
        self.vendor_choices = cache.vendor_choices
        gateways = list(snap.routing.values())
        self.count = len(gateways)
        self.gw = <Gateway *>PyMem_Malloc(max(1, self.count) * sizeof(Gateway))
        if self.gw == NULL:
            raise MemoryError()
        self.slot_of = {}
        self.gateways, self.ids, self.out_keys = [], [], []
        self.static_skips, self.group_checks, self.vendor_ids, self.vendor_codes = [], [], [], []
        self.add_prefixes, self.tech_prefixes, self.callee_plans, self.caller_plans = [], [], [], []
        self.settings, self.tables, self.table_entries, self.table_longest = [], [], [], []
        self.table_results = []
        table_slot = {}
        for slot, g in enumerate(gateways):
            self._gateway(slot, g, snap, cache, table_slot)
        self.table_count = len(self.tables)
        self.vendor_prefixes = {}
        for entries in self.table_entries:
            self.vendor_prefixes.update(dict.fromkeys(entries))
        self.vendor_longest = max(self.table_longest, default=0)

    cdef _gateway(self, int slot, g, snap, cache, dict table_slot):
        cdef Gateway *f = &self.gw[slot]
        plans = snap.routing_plans.get(g.id)
        f.id = g.id
        f.priority = g.priority
        f.weight = g.weight
        f.has_max_calls = g.max_calls is not None
        f.max_calls = g.max_calls if f.has_max_calls else 0
        f.has_max_cps = g.max_cps is not None
        f.max_cps = g.max_cps if f.has_max_cps else 0
        f.protect = bool(g.protect)
        f.switch_until_connect = bool(g.switch_until_connect)
        f.strip_digits = g.strip_digits
        f.has_rate_group_id = g.rate_group_id is not None
        f.plain_vendor = cache.plain_vendor.get(g.id, False)
        group = snap.rate_groups.get(g.rate_group_id) if g.rate_group_id is not None else None
        f.table = -1
        if group is not None:
            if g.rate_group_id not in table_slot:
                table_slot[g.rate_group_id] = len(self.tables)
                entries, longest = group.table()
                self.tables.append(group)
                self.table_entries.append(entries)
                self.table_longest.append(longest)
                self.table_results.append(dict.fromkeys(entries, _UNRESOLVED))
            f.table = table_slot[g.rate_group_id]
        vendor = snap.accounts.get(g.account_id) if g.account_id is not None else None
        f.prepaid = vendor is not None and vendor.billing == "prepaid"
        skip = cache.static_skip.get(g.id)
        f.static_skip = bool(skip)
        f.callee_plan = plans is not None and bool(plans.callee)
        f.caller_plan = plans is not None and bool(plans.caller)
        checks = []
        for group_id in g.groups:
            line_group = snap.groups.get(group_id)
            if line_group is None or line_group.max_calls is None:
                continue
            lines = line_group.max_calls if g.protect else line_group.max_calls - line_group.reserved_lines
            reserved = "" if g.protect else f", {line_group.reserved_lines} reserved"
            reason = f"{self.R.BUSY_PREFIX} (group {line_group.name}: {line_group.max_calls} lines{reserved})"
            checks.append((("group", group_id), lines, reason))
        self.slot_of[g.id] = slot
        self.gateways.append(g)
        self.ids.append(g.id)
        self.out_keys.append(("out", g.id))
        self.static_skips.append(skip)
        self.group_checks.append(tuple(checks))
        self.vendor_ids.append(vendor.id if vendor is not None else None)
        self.vendor_codes.append(vendor.code if vendor is not None else None)
        self.add_prefixes.append(g.add_prefix)
        self.tech_prefixes.append(g.tech_prefix)
        self.callee_plans.append(plans.callee if plans is not None else None)
        self.caller_plans.append(plans.caller if plans is not None else None)
        self.settings.append({})

    # -- step 1 ---------------------------------------------------------------------------

    cdef tuple _candidates(self, snap, ingress, str number, list prefixes):
        """Step 1, remembered per (what of the mapping gateway decides it, the longest prefix
        of the number that some routing gateway serves): the matches are that prefix's own
        prefixes, so every number under it has the same candidates."""
        cdef Py_ssize_t length = min(len(number), self.longest_prefix)
        while length >= 0:
            prefix = _prefix(number, length, prefixes)
            if PyDict_GetItem(self.prefix_index, prefix) != NULL:
                break
            length -= 1
        else:
            prefix = ""
        key = (self._ingress_class(snap, ingress), prefix)
        cdef PyObject *found = PyDict_GetItem(self.sets, key)
        if found != NULL:
            return <tuple>found
        if len(self.sets) >= self.set_limit:
            self.sets.clear()
        made = self.sets[key] = self._candidate_set(snap, ingress, prefix)
        return made

    cdef tuple _candidate_set(self, snap, ingress, str prefix):
        made = tuple(
            (self.slot_of[g.id], strategy, matched)
            for g, strategy, matched in self.R._candidate_set(snap, ingress, prefix)
        )
        if self.untracked:
            untrack_tree(made)
        return made

    cdef object _ingress_class(self, snap, ingress):
        """What of ``ingress`` step 1 depends on: its routing gateway groups (the strategies)
        and the routing gateways whose "mapping gateway name" list names it. None: no ingress
        (the routing analysis: every customer)."""
        if ingress is None:
            return None
        cdef PyObject *found = PyDict_GetItem(self.classes, ingress.id)
        if found != NULL:
            return <object>found
        named = tuple(gid for gid in self.listing if ingress.id in snap.routing[gid].mapping_gateways)
        made = (tuple(ingress.routing_groups), named)
        self.classes[ingress.id] = made
        return made

    cdef inline object _window(self, window, int field):
        """A field of a quality.Window (read from its slot when it is one)."""
        if self.window_slots.holds(window):
            return self.window_slots.read(window, field)
        return getattr(window, WINDOW_FIELDS[field])

    # -- the vendor's rate ----------------------------------------------------------------

    cdef Py_ssize_t _vendor_start(self, str number, list prefixes) except -1:
        """The length of the number's longest prefix that some vendor table has (0: none):
        no table can match a longer one, so each table's probe starts there."""
        cdef Py_ssize_t length = min(len(number), self.vendor_longest)
        while length > 0:
            if PyDict_GetItem(self.vendor_prefixes, _prefix(number, length, prefixes)) != NULL:
                return length
            length -= 1
        return 0

    cdef tuple _table_vendor(self, int table, snap, str number, at, list prefixes, Py_ssize_t start):
        """The vendor result of ``RateGroup.lookup(number, at)`` in vendor table ``table``: the
        first prefix of the number (longest first) that the table has decides; its result is
        remembered when its entry is a plain rate in effect since always (``lookup`` gives that
        rate for every number under the prefix), else ``lookup`` is asked each time."""
        results = <dict>PyList_GET_ITEM(self.table_results, table)
        cdef Py_ssize_t length = min(start, <Py_ssize_t>PyList_GET_ITEM(self.table_longest, table))
        cdef PyObject *hit
        while length > 0:
            prefix = _prefix(number, length, prefixes)
            hit = PyDict_GetItem(results, prefix)
            if hit != NULL:
                if <object>hit is _UNRESOLVED:
                    entries = <dict>PyList_GET_ITEM(self.table_entries, table)
                    entry = <object>PyDict_GetItem(entries, prefix)
                    plain = (type(entry) is Rate or type(entry) is RateTerms) and entry.effective is None
                    result = self._choice(table, snap, number, at)
                    results[prefix] = result if plain else _BY_LOOKUP
                    return result
                if <object>hit is _BY_LOOKUP:
                    return self._choice(table, snap, number, at)
                return <tuple>hit
            length -= 1
        return _NO_VENDOR

    cdef tuple _choice(self, int table, snap, str number, at):
        """The vendor result of ``lookup(number, at)`` in ``table``, made once per rate."""
        group = <object>PyList_GET_ITEM(self.tables, table)
        rate = group.lookup(number, at)
        if rate is None:
            return _NO_VENDOR
        cdef PyObject *found = PyDict_GetItem(self.vendor_choices, id(rate))
        if found != NULL:
            return <tuple>found
        result = self.R.vendor_choice(snap, group, rate)
        self.vendor_choices[id(rate)] = result
        return result

    # -- one call -------------------------------------------------------------------------

    def plan(self, snap, ingress, str number, *, at, now, day, counters, quality, customer_price,
             vendor_funds):
        """``routes.plan_routes_python`` with the same arguments (the snapshot this planner
        was made from)."""
        prefixes = [None] * min(len(number) + 1, PREFIX_MEMO)
        cdef tuple found = self._candidates(snap, ingress, number, prefixes)
        cdef Py_ssize_t n = len(found)
        if n == 0:
            return self.R.RoutePlan([], [], [], list(self.names))
        cdef Facts *facts = <Facts *>PyMem_Malloc(n * (sizeof(Facts) + 2 * sizeof(int)))
        if facts == NULL:
            raise MemoryError()
        try:
            return self._plan(facts, found, snap, ingress, number, prefixes, at, now, day, counters, quality,
                              customer_price, vendor_funds)
        finally:
            PyMem_Free(facts)

    cdef object _plan(self, Facts *facts, tuple found, snap, ingress, str number, list prefixes, at, now,
                      day, counters, quality, customer_price, vendor_funds):
        cdef Py_ssize_t n = len(found)
        cdef int *usable = <int *>(<char *>facts + n * sizeof(Facts))
        cdef int *scratch = usable + n
        cdef int usable_count = 0
        cdef Py_ssize_t i
        cdef int slot
        cdef Gateway *f
        cdef Facts *c
        cdef PyObject *hit
        cdef int64_t lines, here
        cdef Py_ssize_t vendor_start = -1  # the longest prefix any vendor table has (-1: not yet)
        cdef PyObject *values[16]
        cdef PyObject *seen[SEEN_TABLES]  # vendor result per vendor table, this call
        cdef Segment asr_segment, acd_segment  # the windows' current segment, per length
        asr_segment.length = -1.0
        asr_segment.index = NULL
        acd_segment.length = -1.0
        acd_segment.index = NULL
        cdef bint seen_here = self.table_count <= SEEN_TABLES
        if seen_here:
            memset(seen, 0, SEEN_TABLES * sizeof(PyObject *))
        seen_dict = None if seen_here else {}
        active = counters._active
        shared = counters.shared
        cdef bint any_shared = len(shared) > 0
        today_counts = counters._today
        cdef bint same_day = day == counters._day
        asr_windows = quality._asr
        acd_windows = quality._acd
        parameters = snap.parameters
        customer_order = None
        if self.no_loss and customer_price is not None:
            customer_order = self.R.cost_order(customer_price)
        keep = []  # what the facts point to that nothing else keeps alive
        made = []
        try:
            for i in range(n):
                item = <tuple>PyTuple_GET_ITEM(found, i)
                slot = <object>PyTuple_GET_ITEM(item, 0)
                f = &self.gw[slot]
                c = &facts[i]
                c.slot = slot
                c.strategy = <object>PyTuple_GET_ITEM(item, 1)
                prefix = <object>PyTuple_GET_ITEM(item, 2)
                c.prefix_length = len(<str>prefix)
                gateway_id = <object>PyList_GET_ITEM(self.ids, slot)
                key = <object>PyList_GET_ITEM(self.out_keys, slot)
                # the vendor's rate and cost (remembered per vendor table for the call)
                if f.table < 0:
                    vendor = _NO_VENDOR
                elif not f.plain_vendor:
                    vendor = self.R._vendor_rate(
                        snap, snap.routing_cache, <object>PyList_GET_ITEM(self.gateways, slot), number, at, seen={}
                    )
                    keep.append(vendor)
                elif seen_here:
                    if seen[f.table] == NULL:
                        if vendor_start < 0:
                            vendor_start = self._vendor_start(number, prefixes)
                        vendor = self._table_vendor(f.table, snap, number, at, prefixes, vendor_start)
                        keep.append(vendor)
                        seen[f.table] = <PyObject *>vendor
                    else:
                        vendor = <tuple>seen[f.table]
                else:
                    hit = PyDict_GetItem(seen_dict, f.table)
                    if hit == NULL:
                        if vendor_start < 0:
                            vendor_start = self._vendor_start(number, prefixes)
                        vendor = self._table_vendor(f.table, snap, number, at, prefixes, vendor_start)
                        seen_dict[f.table] = vendor
                    else:
                        vendor = <tuple>hit
                cost = <object>PyTuple_GET_ITEM(vendor, 1)
                cost_order = <object>PyTuple_GET_ITEM(vendor, 2)
                c.no_cost = cost is None
                c.cost = <PyObject *>cost_order
                # ASR and its attempts, ACD, rates of response and connected (Quality's asr, acd
                # and rates, in that order): the windows' caches when current
                hit = PyDict_GetItem(asr_windows, gateway_id)
                window = None if hit == NULL else <object>hit
                if window is None:
                    asr = None
                    attempts = 0
                else:
                    cached = self._window(window, W_ASR)
                    if cached is not None and _current(<tuple>cached, self._window(window, W_LENGTH), now, &asr_segment):
                        result = <object>PyTuple_GET_ITEM(<tuple>cached, 1)
                    else:
                        result = window.asr(now)
                    asr = result[0]
                    attempts = result[1]
                hit = PyDict_GetItem(acd_windows, gateway_id)
                if hit == NULL:
                    acd = None
                else:
                    cached = self._window(<object>hit, W_ACD)
                    if cached is not None and _current(<tuple>cached, self._window(<object>hit, W_LENGTH), now, &acd_segment):
                        acd = <object>PyTuple_GET_ITEM(<tuple>cached, 1)
                    else:
                        acd = (<object>hit).acd(now)
                if window is None:
                    response = None
                    connected = None
                else:
                    cached = self._window(window, W_RATES)
                    if cached is not None and _current(<tuple>cached, self._window(window, W_LENGTH), now, &asr_segment):
                        result = <object>PyTuple_GET_ITEM(<tuple>cached, 1)
                    else:
                        result = window.rates(now)
                    response = result[0]
                    connected = result[1]
                if asr is None or PyLong_AsLongLong(attempts) < self.min_calls:
                    c.demoted = False
                    c.asr_key = _NEVER_DEMOTED
                else:
                    c.asr_key = -PyFloat_AsDouble(asr)
                    c.demoted = -c.asr_key < self.threshold
                c.acd_key = _MINUS_INF if acd is None else -PyFloat_AsDouble(acd)
                # lines in use (every node's) ÷ line limit, calls today
                hit = PyDict_GetItem(active, key)
                active_count = 0 if hit == NULL else <object>hit
                here = PyLong_AsLongLong(active_count)
                lines = here
                if any_shared:
                    hit = PyDict_GetItem(shared, key)
                    if hit != NULL:
                        lines += PyLong_AsLongLong(<object>hit)
                if f.has_max_calls and f.max_calls != 0:
                    if 0 <= lines < EXACT_DOUBLE and 0 < f.max_calls < EXACT_DOUBLE:
                        usage = PyFloat_FromDouble(<double>lines / <double>f.max_calls)
                    else:
                        usage = lines / (<object>PyList_GET_ITEM(self.gateways, slot)).max_calls
                else:
                    usage = _ZERO_USAGE
                c.usage = PyFloat_AS_DOUBLE(usage)
                today = 0
                if same_day:
                    hit = PyDict_GetItem(today_counts, key)
                    if hit != NULL:
                        today = <object>hit
                c.today = PyLong_AsLongLong(today)
                # why it cannot be tried
                if f.static_skip:
                    skipped = <object>PyList_GET_ITEM(self.static_skips, slot)
                else:
                    skipped = self._skip(slot, cost, cost_order, customer_price, customer_order, active,
                                         here, key, counters, now, vendor_funds)
                c.usable = not skipped
                values[0] = PyList_GET_ITEM(self.gateways, slot)
                values[1] = PyTuple_GET_ITEM(item, 1)
                values[2] = <PyObject *>prefix
                values[3] = PyTuple_GET_ITEM(vendor, 0)
                values[4] = <PyObject *>cost
                values[5] = <PyObject *>asr
                values[6] = <PyObject *>attempts
                values[7] = <PyObject *>acd
                values[8] = <PyObject *>response
                values[9] = <PyObject *>connected
                values[10] = <PyObject *>usage
                values[11] = <PyObject *>today
                values[12] = <PyObject *>skipped
                values[13] = <PyObject *>self.names
                values[14] = <PyObject *>parameters
                values[15] = <PyObject *>_EMPTY  # the reference's sort key: this planner sorts Facts
                made.append(self.candidate.make(values))
                if c.usable:
                    usable[usable_count] = i
                    usable_count += 1
            _merge_sort(self, facts, usable, scratch, usable_count)
        finally:
            _forget(&asr_segment)
            _forget(&acd_segment)
        ordered = []
        cut = []
        skipped_list = []
        cdef int last = -1
        cdef int k
        for k in range(usable_count):
            i = usable[k]
            if (last >= 0 and not self.gw[facts[last].slot].switch_until_connect) or (
                self.has_limit and len(ordered) >= self.limit
            ):
                cut.append(<object>PyList_GET_ITEM(made, i))
            else:
                ordered.append(<object>PyList_GET_ITEM(made, i))
                last = i
        for i in range(n):
            if not facts[i].usable:
                skipped_list.append(<object>PyList_GET_ITEM(made, i))
        values[0] = <PyObject *>ordered
        values[1] = <PyObject *>skipped_list
        values[2] = <PyObject *>cut
        step_names = list(self.names)
        values[3] = <PyObject *>step_names
        return self.plan_maker.make(values)

    cdef object _skip(self, int slot, cost, cost_order, customer_price, customer_order, dict active,
                      int64_t here, key, counters, now, vendor_funds):
        """``routes._skip_reason`` for a gateway without a static reason (``here``: its lines in
        use on this node, as read for its line usage)."""
        cdef Gateway *f = &self.gw[slot]
        cdef PyObject *hit
        if f.prepaid:
            funds = vendor_funds(<object>PyList_GET_ITEM(self.vendor_ids, slot))
            hit = PyDict_GetItem(active, key)  # (read again: the callback ran)
            here = 0 if hit == NULL else PyLong_AsLongLong(<object>hit)
            if funds is not None and funds <= 0:
                return f"vendor account {<object>PyList_GET_ITEM(self.vendor_codes, slot)} has no balance left"
        if self.no_loss and customer_price is not None:
            if f.has_rate_group_id and cost is None:
                return "no vendor rate for the number (cost unknown)"
            if cost is not None:
                if type(cost_order) is int and type(customer_order) is int:
                    loss = cost_order > customer_order
                else:
                    loss = cost > customer_price
                if loss:
                    return (
                        f"loss: vendor {float(cost):.7f} > customer {float(customer_price):.7f} per reference call"
                    )
        if f.has_max_calls and here >= f.max_calls:
            return f"{self.R.BUSY_PREFIX} (max calls)"
        if f.has_max_cps and counters.rate(key, now) >= f.max_cps:
            return f"{self.R.BUSY_PREFIX} (max CPS)"
        for check in <tuple>PyList_GET_ITEM(self.group_checks, slot):
            hit = PyDict_GetItem(active, check[0])
            if (0 if hit == NULL else <object>hit) >= check[1]:
                return check[2]
        return None

    # -- the customer's rate ----------------------------------------------------------------

    def select_rate(self, str number, at, sources, *, switches, policy):
        """``billing.select_rate(number, at, sources, switches=, policy=)``: here when only the
        account's rate group can price the call (no private or phone rate, no period rate in
        force: its longest prefix in effect is the rate), else by billing itself."""
        base = sources.account
        if (
            type(base) is not RateGroup
            or sources.phone_private is not None
            or sources.account_private is not None
            or (sources.period_rate is not None and switches.active)
        ):
            return self.billing_select(number, at, sources, switches=switches, policy=policy)
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("the call time must be timezone-aware")
        entries, longest = base.table()
        cdef Py_ssize_t length = min(len(number), <Py_ssize_t>longest)
        cdef PyObject *entry
        cdef PyObject *values[7]
        rate = None
        while length > 0:
            entry = PyDict_GetItem(<dict>entries, number[:length])
            if entry != NULL:
                if type(<object>entry) is Rate and (<object>entry).effective is None:
                    rate = <object>entry
                else:
                    rate = base.lookup(number, at)
                break
            length -= 1
        if rate is None:
            values[2] = <PyObject *>None
            values[3] = <PyObject *>_EMPTY
        else:
            values[0] = <PyObject *>self.account_source
            values[1] = <PyObject *>base.name
            values[2] = <PyObject *>rate
            connected = rate.connected
            response = rate.response
            values[3] = <PyObject *>connected
            values[4] = <PyObject *>response
            values[5] = <PyObject *>None
            values[6] = <PyObject *>None
            choice = self.choice_maker.make(values)
            choices = (choice,)
            values[2] = <PyObject *>choice
            values[3] = <PyObject *>choices
        values[0] = <PyObject *>number
        values[1] = <PyObject *>at
        return self.selection_maker.make(values)

    cdef tuple _settings(self, int slot, snap, ingress, settings_of):
        """A route's fields toward gateway ``slot`` for mapping gateways with ``ingress``'s media
        proxy setting, but its numbers (remembered)."""
        gateway = <object>PyList_GET_ITEM(self.gateways, slot)
        (name, host, port, transport), rest = settings_of(snap, ingress, gateway)
        # then the caller rewriting after the pool (none here), the Request-URI (the default),
        # the gateway's codec policy, no extra headers, its source IP: as admission._route makes them
        fields = (name, host, port, transport, *rest, 0, "", None, self.R.gateway_codecs(snap, gateway), (),
                  gateway.source_ip)
        if len(fields) != self.route.n - 2:
            raise TypeError(f"a route has {self.route.n} fields, the planner made {len(fields) + 2}")
        if self.untracked:
            untrack(fields)
        (<dict>PyList_GET_ITEM(self.settings, slot))[ingress.media_proxy] = fields
        return fields

    def warm(self, snap, settings_of):
        """Make what the first calls would otherwise make, in Python, on the call path: the
        candidate sets of every mapping gateway's class for every prefix a routing gateway
        serves (and for numbers none serves), up to the cache's bound, and every route's
        settings for every media proxy setting of the mapping gateways. (The node calls this
        in its loading thread, admission.prepare.)"""
        cdef int slot
        ingresses = {}
        for ingress in snap.mapping.values():
            ingresses.setdefault(self._ingress_class(snap, ingress), ingress)
        for klass, ingress in ingresses.items():
            for prefix in (*snap.prefix_index, ""):
                key = (klass, prefix)
                if key in self.sets:
                    continue
                if len(self.sets) >= self.set_limit:
                    break
                self.sets[key] = self._candidate_set(snap, ingress, prefix)
        proxies = {}
        for ingress in snap.mapping.values():
            proxies.setdefault(ingress.media_proxy, ingress)
        for ingress in proxies.values():
            for slot in range(self.count):
                if ingress.media_proxy not in <dict>PyList_GET_ITEM(self.settings, slot):
                    self._settings(slot, snap, ingress, settings_of)

    # -- the routes -----------------------------------------------------------------------

    def routes(self, snap, list ordered, ingress, str callee_billing, str caller_billing, rng, settings_of):
        """Admission's routes toward the ``ordered`` candidates: ``admission._route`` for each
        (``settings_of(snap, ingress, gateway)``: a route's fields but its numbers)."""
        cdef list out = []
        cdef int slot
        cdef Gateway *f
        cdef PyObject *values[MAX_FIELDS]
        cdef PyObject *hit
        cdef tuple fields
        cdef Py_ssize_t k
        proxy = ingress.media_proxy
        for candidate in ordered:
            if self.candidate_slots.holds(candidate):
                gateway = self.candidate_slots.read(candidate, 0)
            else:
                gateway = candidate.gateway
            if self.gateway_slots.holds(gateway):
                hit = PyDict_GetItem(self.slot_of, self.gateway_slots.read(gateway, 0))
            else:
                hit = PyDict_GetItem(self.slot_of, gateway.id)
            if hit == NULL:
                raise KeyError(gateway.id)
            slot = <object>hit
            f = &self.gw[slot]
            callee = <str>PyList_GET_ITEM(self.add_prefixes, slot) + callee_billing[f.strip_digits:]
            if f.callee_plan:
                callee = (<object>PyList_GET_ITEM(self.callee_plans, slot)).rewrite(callee, rng)
            callee = <str>PyList_GET_ITEM(self.tech_prefixes, slot) + callee
            if f.caller_plan:
                caller = (<object>PyList_GET_ITEM(self.caller_plans, slot)).rewrite(caller_billing, rng)
            else:
                caller = caller_billing
            hit = PyDict_GetItem(<dict>PyList_GET_ITEM(self.settings, slot), proxy)
            if hit == NULL:
                fields = self._settings(slot, snap, ingress, settings_of)
            else:
                fields = <tuple>hit
            for k in range(4):
                values[k] = PyTuple_GET_ITEM(fields, k)
            values[4] = <PyObject *>callee
            values[5] = <PyObject *>caller
            for k in range(4, self.route.n - 2):
                values[k + 2] = PyTuple_GET_ITEM(fields, k)
            out.append(self.route.make(values))
        return out


include "_planner_sort.pxi"
