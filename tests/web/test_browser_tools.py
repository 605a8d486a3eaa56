"""The browser tests' tools check: without chromium they fail under CI (which must run them)
and are skipped, saying why, anywhere else."""

from __future__ import annotations

import shutil

import pytest

from tests.web import browser


def test_missing_chromium_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI: the browser test needs Debian's chromium"):
        browser.chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"make install"):
        browser.chromium()


def test_chromium_found_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}" if name == "chromium" else None)
    assert browser.chromium() == "/usr/bin/chromium"
