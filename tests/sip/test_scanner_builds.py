"""The compiled scanner (``_scanner.pyx``) and its pure-Python fallback (``_scanner_py.py``, the
specification) must give identical results, on every torture message and on noise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.sip import _scanner, _scanner_py, parser
from tests.sip.torture import all_messages

LIMITS = (16_384, 300, 40)


def test_the_parser_uses_the_compiled_scanner():
    # if this fails, run `python setup.py build_ext --inplace`
    assert parser._scan is _scanner.scan
    assert _scanner.__file__.endswith(".so")


def test_both_builds_agree_on_the_whole_corpus():
    for data in all_messages():
        for limit in LIMITS:
            assert _scanner.scan(data, limit) == _scanner_py.scan(data, limit)
            # also from every line start, which exercises partial and odd sections
            for cut in range(0, len(data), 97):
                assert _scanner.scan(data[cut:], limit) == _scanner_py.scan(data[cut:], limit)


_LINE_BYTES = st.sampled_from(
    [b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b"a", b"Via", b"\x00", b"\xff", b"\xc3\xa9"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_LINE_BYTES, max_size=60), st.sampled_from(LIMITS))
def test_both_builds_agree_on_line_noise(pieces, limit):
    data = b"".join(pieces)
    assert _scanner.scan(data, limit) == _scanner_py.scan(data, limit)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_both_builds_agree_on_random_bytes(data):
    assert _scanner.scan(data, 16_384) == _scanner_py.scan(data, 16_384)
