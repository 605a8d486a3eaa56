"""The progress bar (a redrawn line on a terminal, plain lines otherwise) and the G.711 audio
`softswitch call` sends (checked against the standard library's encoder where it has one)."""

from __future__ import annotations

import io
import math
import struct
import warnings

import pytest

from signaling.progress import Progress
from signaling.testcall import PCMA, PCMU, answer_media
from signaling.testcall_io import _linear_to_alaw, _linear_to_ulaw, tone_frame


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    with Progress("rates import", 8, stream=out, tty=False) as bar:
        for _ in range(8):
            bar.advance()
    lines = out.getvalue().splitlines()
    assert lines[0] == "rates import: started (8)"
    assert lines[1:4] == ["rates import: 2/8 25%", "rates import: 4/8 50%", "rates import: 6/8 75%"]
    assert lines[4].startswith("rates import: done, 8/8 100% in ") and len(lines) == 5
    assert "\r" not in out.getvalue()


def test_a_redrawn_bar_on_a_terminal() -> None:
    out = io.StringIO()
    with Progress("migrate", 4, stream=out, tty=True) as bar:
        bar.advance(2)
    text = out.getvalue()
    assert text.startswith("\rmigrate  [" + "#" * 15 + "." * 15 + "]  2/4 50%")
    assert "  done in " in text and "stopped" not in text  # ended normally
    failed = io.StringIO()
    with pytest.raises(RuntimeError), Progress("x", None, stream=failed, tty=False):
        raise RuntimeError
    assert "x: stopped, 0 in" in failed.getvalue()


def test_g711_encoders_match_the_standard_library() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # gone in Python 3.13
    samples = [*range(-32768, 32768, 7), 32767, -1, 0, 1]
    pcm = struct.pack(f"<{len(samples)}h", *samples)
    assert bytes(_linear_to_alaw(s) for s in samples) == audioop.lin2alaw(pcm, 2)
    assert bytes(_linear_to_ulaw(s) for s in samples) == audioop.lin2ulaw(pcm, 2)


def test_the_tone_is_a_400_hz_sine() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    for pt, decode in ((PCMA, audioop.alaw2lin), (PCMU, audioop.ulaw2lin)):
        frame = tone_frame(pt)
        assert len(frame) == 160
        decoded = struct.unpack("<160h", decode(frame, 2))
        expected = [8000 * math.sin(2 * math.pi * 400 * n / 8000) for n in range(160)]
        assert max(abs(a - b) for a, b in zip(decoded, expected, strict=True)) < 300


def test_answer_media_reads_the_sdp_answer() -> None:
    answer = (
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        b"m=audio 30000 RTP/AVP 0 101\r\nc=IN IP4 198.51.100.7\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    assert answer_media(answer) == (("198.51.100.7", 30000), PCMU)  # the media-level c= wins
    assert answer_media(answer.replace(b"c=IN IP4 198.51.100.7\r\n", b"")) == (("192.0.2.1", 30000), PCMU)
    assert answer_media(answer.replace(b"30000", b"0")) is None  # stream refused
    assert answer_media(answer.replace(b"RTP/AVP 0 101", b"RTP/AVP 18 101")) is None  # G.729 only
    assert answer_media(b"") is None
