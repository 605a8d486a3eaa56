# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The compiled SIP scanner: what ``_scanner_py.py`` does, written for Cython.

``_scanner_py.py`` is the specification and the pure-Python fallback; this file gives exactly the
same result for every input (``tests/sip/test_scanner_builds.py`` checks that on the torture
corpus, on line noise and on random bytes) with C loops over the message's bytes: no list of line
copies, no slice per header name, the values decoded straight from the message's buffer. Header
names spelled the usual way are recognised by their bytes and answered with the canonical name
itself; any other spelling goes through the same bounded cache as in the fallback.
"""

from libc.string cimport memchr, memcmp

from signaling.sip.message import canonical_name

cdef const unsigned char* _TOKEN_ALPHABET = (
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~"
)
#: byte -> 1 when it may appear in a header name (an RFC 3261 token)
cdef unsigned char _TOKEN_TABLE[256]


cdef void _fill_token_table():
    cdef Py_ssize_t i = 0
    for i in range(256):
        _TOKEN_TABLE[i] = 0
    i = 0
    while _TOKEN_ALPHABET[i] != 0:
        _TOKEN_TABLE[_TOKEN_ALPHABET[i]] = 1
        i += 1


_fill_token_table()

#: Raw header-name bytes -> canonical name, for the spellings the table below does not know.
#: Bounded: names come from the network.
cdef dict _NAME_CACHE = {}
cdef Py_ssize_t _NAME_CACHE_MAX = 512  # entries
cdef Py_ssize_t _NAME_CACHE_KEY_MAX = 64  # bytes: longer names are canonicalised each time

# the canonical spellings found on nearly every message, as canonical_name gives them
cdef str _VIA = canonical_name("Via")
cdef str _FROM = canonical_name("From")
cdef str _TO = canonical_name("To")
cdef str _CALL_ID = canonical_name("Call-ID")
cdef str _CSEQ = canonical_name("CSeq")
cdef str _CONTACT = canonical_name("Contact")
cdef str _MAX_FORWARDS = canonical_name("Max-Forwards")
cdef str _CONTENT_TYPE = canonical_name("Content-Type")
cdef str _CONTENT_LENGTH = canonical_name("Content-Length")
cdef str _SUBJECT = canonical_name("Subject")
cdef str _ALLOW = canonical_name("Allow")
cdef str _SUPPORTED = canonical_name("Supported")
cdef str _RECORD_ROUTE = canonical_name("Record-Route")
cdef str _ROUTE = canonical_name("Route")
cdef str _USER_AGENT = canonical_name("User-Agent")
cdef str _SERVER = canonical_name("Server")


cdef inline bint _is(const unsigned char* p, Py_ssize_t n, const char* name, Py_ssize_t size):
    return n == size and memcmp(p, name, size) == 0


cdef str _known_name(const unsigned char* p, Py_ssize_t n):
    """The canonical name when ``p[:n]`` is a usual canonical spelling, else None."""
    cdef unsigned char c = p[0]
    if c == b"V":
        if _is(p, n, b"Via", 3):
            return _VIA
    elif c == b"F":
        if _is(p, n, b"From", 4):
            return _FROM
    elif c == b"T":
        if _is(p, n, b"To", 2):
            return _TO
    elif c == b"C":
        if n == 14 and memcmp(p, b"Content-Length", 14) == 0:
            return _CONTENT_LENGTH
        if n == 12 and memcmp(p, b"Content-Type", 12) == 0:
            return _CONTENT_TYPE
        if _is(p, n, b"Call-ID", 7):
            return _CALL_ID
        if _is(p, n, b"CSeq", 4):
            return _CSEQ
        if _is(p, n, b"Contact", 7):
            return _CONTACT
    elif c == b"M":
        if _is(p, n, b"Max-Forwards", 12):
            return _MAX_FORWARDS
    elif c == b"S":
        if _is(p, n, b"Subject", 7):
            return _SUBJECT
        if _is(p, n, b"Supported", 9):
            return _SUPPORTED
        if _is(p, n, b"Server", 6):
            return _SERVER
    elif c == b"A":
        if _is(p, n, b"Allow", 5):
            return _ALLOW
    elif c == b"R":
        if _is(p, n, b"Record-Route", 12):
            return _RECORD_ROUTE
        if _is(p, n, b"Route", 5):
            return _ROUTE
    elif c == b"U":
        if _is(p, n, b"User-Agent", 10):
            return _USER_AGENT
    return None


cdef str _name_of(bytes data, Py_ssize_t start, Py_ssize_t end):
    cdef const unsigned char* buf = data
    cdef str known = _known_name(buf + start, end - start)
    cdef bytes raw
    if known is not None:
        return known
    raw = data[start:end]
    known = _NAME_CACHE.get(raw)
    if known is None:
        known = canonical_name(raw.decode("ascii"))
        if end - start <= _NAME_CACHE_KEY_MAX and len(_NAME_CACHE) < _NAME_CACHE_MAX:
            _NAME_CACHE[raw] = known
    return known


cdef inline Py_ssize_t _line_end(const unsigned char* buf, Py_ssize_t start, Py_ssize_t stop):
    """The offset of the next LF in ``buf[start:stop]``, ``stop`` when there is none."""
    cdef const void* hit
    if start >= stop:
        return stop
    hit = memchr(buf + start, 10, <size_t>(stop - start))
    if hit == NULL:
        return stop
    return <Py_ssize_t>(<const unsigned char*>hit - buf)


def scan(bytes data not None, Py_ssize_t max_header_bytes):
    """Cut ``data`` into start line, headers and the offset where the body starts: see
    :func:`signaling.sip._scanner_py.scan`, whose result this is, byte for byte."""
    cdef const unsigned char* buf = data
    cdef Py_ssize_t n = len(data)
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t limit, blank, other, block_end
    cdef Py_ssize_t body_start = -1
    cdef int status = 0
    cdef str reason = ""
    cdef str start_line = ""
    cdef list headers = []
    cdef Py_ssize_t start, stop, ln, i, name_end, vs, ve, next_start
    cdef Py_ssize_t crlf_lines = 0
    cdef Py_ssize_t cr_count = 0
    cdef unsigned char c
    cdef bint first = True
    cdef bint folded
    cdef str name = ""
    cdef list folds = None
    cdef bytes piece

    while pos < n and (buf[pos] == 13 or buf[pos] == 10):
        pos += 1
    # the header section ends at the first empty line: LF CR LF, or LF LF
    limit = n if n - pos <= max_header_bytes else pos + max_header_bytes
    # (the first LF that starts either ends the section: what the fallback's two finds decide)
    blank = -1
    other = -1
    i = pos
    while i < limit:
        i = _line_end(buf, i, limit)
        if i + 1 < limit and buf[i + 1] == 10:
            other = i
            break
        if i + 2 < limit and buf[i + 1] == 13 and buf[i + 2] == 10:
            blank = i
            break
        i += 1
    if other >= 0:
        block_end = other + 1
        body_start = other + 2
    elif blank >= 0:
        block_end = blank + 1
        body_start = blank + 3
    else:
        # no empty line: cut the complete lines there are, for a useful partial message
        block_end = data.rfind(b"\n", pos, limit) + 1
        if limit < n:
            status, reason = 513, f"header section larger than {max_header_bytes} bytes"
        elif block_end == n and block_end > pos:
            body_start = n
        else:
            status, reason = 400, "message ends inside the header section"
            if block_end <= pos:
                block_end = n
    if block_end <= pos:
        # nothing to cut: one empty start line
        return "", headers, body_start, status, reason
    start = pos
    while start < block_end:
        stop = _line_end(buf, start, block_end)
        next_start = stop + 1  # past the LF; > block_end when the line ends with the block
        ln = stop - start
        if ln > 0 and buf[stop - 1] == 13:
            ln -= 1
            crlf_lines += 1
        if first:
            first = False
            start_line = data[start : start + ln].decode("utf-8", "surrogateescape")
            start = next_start
            continue
        c = buf[start] if ln > 0 else 32
        if c == 32 or c == 9:
            # a continuation line: LWS, worth one SP (RFC 3261 §7.3.1)
            if name:
                vs = start
                ve = start + ln
                while vs < ve and (buf[vs] == 32 or buf[vs] == 9):
                    vs += 1
                while ve > vs and (buf[ve - 1] == 32 or buf[ve - 1] == 9):
                    ve -= 1
                if ve > vs:
                    piece = data[vs:ve]
                    if folds is None:
                        folds = [piece]
                    else:
                        folds.append(piece)
            elif status == 0:
                status, reason = 400, "continuation line without a header before it"
            start = next_start
            continue
        if name:
            # the previous header is complete
            if folds is not None:
                headers.append((name, b" ".join(folds).decode("utf-8", "surrogateescape")))
                folds = None
            name = ""
        i = start
        ve = start + ln
        while i < ve and _TOKEN_TABLE[buf[i]]:
            i += 1
        name_end = i
        while i < ve and (buf[i] == 32 or buf[i] == 9):
            i += 1
        if name_end == start or i == ve or buf[i] != 58:
            if status == 0:
                text = data[start : min(stop, start + 40)].decode("utf-8", "backslashreplace")
                status, reason = 400, f"malformed header line {text!r}"
            start = next_start
            continue
        name = _name_of(data, start, name_end)
        vs = i + 1
        while vs < ve and (buf[vs] == 32 or buf[vs] == 9):
            vs += 1
        while ve > vs and (buf[ve - 1] == 32 or buf[ve - 1] == 9):
            ve -= 1
        folded = next_start < block_end and (buf[next_start] == 32 or buf[next_start] == 9)
        if folded:
            # the value continues on the next line; keep the pieces until the header is complete
            folds = [data[vs:ve]] if ve > vs else []
        else:
            headers.append((name, data[vs:ve].decode("utf-8", "surrogateescape")))
            name = ""
        start = next_start
    if name and folds is not None:
        headers.append((name, b" ".join(folds).decode("utf-8", "surrogateescape")))
    if status == 0:
        for i in range(pos, block_end):
            if buf[i] == 13:
                cr_count += 1
        if cr_count != crlf_lines:
            status, reason = 400, "CR without LF in the header section"
    return start_line, headers, body_start, status, reason
