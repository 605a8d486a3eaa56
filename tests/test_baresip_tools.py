"""The baresip tests' tools check: without baresip they fail under CI (which must run them:
scripts/install.sh installs it) and are skipped, saying why, anywhere else."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import baresip_peer


def test_missing_baresip_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI: the baresip test needs Debian's baresip"):
        baresip_peer.baresip_executable()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"make install"):
        baresip_peer.baresip_executable()


def test_missing_opus_module_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(baresip_peer, "MODULES", tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI: the Opus call needs baresip's opus module"):
        baresip_peer.require_opus()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"opus module"):
        baresip_peer.require_opus()
