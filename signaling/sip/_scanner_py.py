"""The hot-path SIP scanner: start line, header lines, line folding. The specification and the
pure-Python fallback.

``_scanner.pyx`` is its compiled twin, written for Cython (C loops over the message's buffer, no
line copies): ``setup.py`` builds it into ``signaling.sip._scanner``, which the parser uses, and
``tests/sip/test_scanner_builds.py`` holds the two to identical results on the torture corpus, on
line noise and on random bytes. A change here must be made there too. The local-variable
annotations (``cython.Py_ssize_t``, ``cython.uchar``) say which values are C integers in the twin;
the interpreter ignores them (``cython`` is imported for type checkers only).

What the scanner does, and no more: skip leading CR/LF (RFC 3261 §7.5), cut the start line, cut
header lines at LF (a CR before it is optional on input), join continuation lines (a line that
starts with SP or HT continues the previous header; the fold counts as one SP), split each header
at its colon (white space before the colon is allowed: HCOLON), check the name is a token, map it to
its canonical form, trim the value and decode it. Bytes that are not UTF-8 are decoded with
``surrogateescape``, so nothing is lost and :func:`signaling.sip.message.serialize` gives the same
bytes back; NULs are kept as characters (a quoted-pair may carry one, RFC 4475 intmeth). A CR that
is not followed by LF is an error (it is not allowed anywhere in a header section).

It never raises on bad input: it returns the first problem as a status and a reason and goes on
cutting lines, so the parser can still answer a malformed request with the right Via and Call-ID.
"""

from typing import TYPE_CHECKING

from signaling.sip.message import canonical_name

if TYPE_CHECKING:
    import cython  # type: ignore[import-untyped]  # the annotations are for Cython, not mypy

_TOKEN_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~"
#: byte → 1 when it may appear in a header name (an RFC 3261 token)
_TOKEN_TABLE = bytes(1 if b in _TOKEN_ALPHABET else 0 for b in range(256))

#: Raw header-name bytes → canonical name. Bounded: names come from the network.
_NAME_CACHE: dict[bytes, str] = {}
_NAME_CACHE_MAX = 512  # entries
_NAME_CACHE_KEY_MAX = 64  # bytes: longer names are canonicalised each time, never kept


# one flat loop on purpose: in the compiled build every branch below is plain C
def scan(data: bytes, max_header_bytes: int) -> tuple[str, list[tuple[str, str]], int, int, str]:  # noqa: PLR0912, PLR0915
    """Cut ``data`` into start line, headers and the offset where the body starts.

    Returns ``(start_line, headers, body_start, status, reason)``. ``headers`` holds
    ``(canonical name, value)`` for every well-formed header line, in order. ``body_start`` is -1
    when the header section has no end. ``status`` is 0 when all is well, otherwise the SIP status
    the first problem deserves (400, or 513 when the header section exceeds ``max_header_bytes``)
    and ``reason`` says what it was. A datagram that ends right after a header line, without the
    empty line, is taken as having an empty body.
    """
    # byte values as C locals (module globals would be Python objects in the compiled build)
    sp: cython.uchar = 32
    ht: cython.uchar = 9
    cr: cython.uchar = 13
    lf: cython.uchar = 10
    colon: cython.uchar = 58
    n: cython.Py_ssize_t = len(data)
    pos: cython.Py_ssize_t = 0
    limit: cython.Py_ssize_t
    blank: cython.Py_ssize_t
    other: cython.Py_ssize_t
    block_end: cython.Py_ssize_t
    ln: cython.Py_ssize_t = 0
    count: cython.Py_ssize_t
    k: cython.Py_ssize_t
    i: cython.Py_ssize_t
    name_end: cython.Py_ssize_t
    vs: cython.Py_ssize_t
    ve: cython.Py_ssize_t
    folded: cython.bint
    crlf_lines: cython.Py_ssize_t = 0
    body_start: cython.Py_ssize_t = -1
    status: cython.int = 0
    c: cython.uchar
    table: bytes = _TOKEN_TABLE
    cache: dict[bytes, str] = _NAME_CACHE
    headers: list[tuple[str, str]] = []
    lines: list[bytes]
    line: bytes
    value: bytes
    raw: bytes
    start_line: str = ""
    reason: str = ""
    name: str = ""
    known: str | None
    folds: list[bytes] | None = None

    while pos < n:
        c = data[pos]
        if c not in (cr, lf):
            break
        pos += 1
    # the header section ends at the first empty line: LF CR LF, or LF LF
    limit = n if n - pos <= max_header_bytes else pos + max_header_bytes
    blank = data.find(b"\n\r\n", pos, limit)
    other = data.find(b"\n\n", pos, limit if blank < 0 else blank + 2)
    if other >= 0 and (blank < 0 or other < blank):
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
    lines = data[pos:block_end].split(b"\n")
    if block_end > pos and data[block_end - 1] == lf:
        lines.pop()
    count = len(lines)
    for k in range(count + 1):
        if k < count:
            line = lines[k]
            ln = len(line)
            if ln > 0 and line[ln - 1] == cr:
                ln -= 1
                crlf_lines += 1
            if k == 0:
                start_line = line[:ln].decode("utf-8", "surrogateescape")
                continue
            c = line[0] if ln > 0 else sp
            if c in (sp, ht):
                # a continuation line: LWS, worth one SP (RFC 3261 §7.3.1)
                if name:
                    value = line[:ln].strip(b" \t")
                    if value:
                        if folds is None:
                            folds = [value]
                        else:
                            folds.append(value)
                elif status == 0:
                    status, reason = 400, "continuation line without a header before it"
                continue
        if name:
            # the previous header is complete
            if folds is not None:
                headers.append((name, b" ".join(folds).decode("utf-8", "surrogateescape")))
                folds = None
            name = ""
        if k == count:
            break
        i = 0
        while i < ln:
            c = line[i]
            if not table[c]:
                break
            i += 1
        name_end = i
        while i < ln:
            c = line[i]
            if c not in (sp, ht):
                break
            i += 1
        if name_end == 0 or i == ln or line[i] != colon:
            if status == 0:
                text = line[:40].decode("utf-8", "backslashreplace")
                status, reason = 400, f"malformed header line {text!r}"
            continue
        raw = line[:name_end]
        known = cache.get(raw)
        if known is None:
            known = canonical_name(raw.decode("ascii"))
            if name_end <= _NAME_CACHE_KEY_MAX and len(cache) < _NAME_CACHE_MAX:
                cache[raw] = known
        name = known
        vs = i + 1
        while vs < ln:
            c = line[vs]
            if c not in (sp, ht):
                break
            vs += 1
        ve = ln
        while ve > vs:
            c = line[ve - 1]
            if c not in (sp, ht):
                break
            ve -= 1
        folded = False
        if k + 1 < count:
            line = lines[k + 1]
            if len(line) > 0:
                c = line[0]
                folded = c in (sp, ht)
        if folded:
            # the value continues on the next line; keep the pieces until the header is complete
            folds = [lines[k][vs:ve]] if ve > vs else []
        else:
            headers.append((name, lines[k][vs:ve].decode("utf-8", "surrogateescape")))
            name = ""
    if status == 0 and data.count(b"\r", pos, block_end) != crlf_lines:
        status, reason = 400, "CR without LF in the header section"
    return start_line, headers, body_start, status, reason
