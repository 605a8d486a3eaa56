"""`softswitch backup` and `softswitch restore` (T62) as an operator runs them: the demo store
and a configuration file to one archive, restored into a new data directory."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli


def test_backup_and_restore_through_the_cli(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    assert cli("init").returncode == 0 and cli("seed-demo").returncode == 0
    assert cli("pay", "1001", "0.1234567").returncode == 0
    config = tmp_path / "node.toml"
    config.write_text("[sip]\nport = 5070\n", encoding="utf-8")
    archive = tmp_path / "ss.tar.gz"
    made = cli("backup", str(archive), "--config", str(config))
    assert made.returncode == 0, made.stderr
    assert "sqlite database at schema version" in made.stdout and "config/node.toml" in made.stdout
    target = f"sqlite:///{tmp_path / 'new' / 'ss.db'}"
    out = tmp_path / "restored.toml"
    done = cli("restore", str(archive), "--store", target, "--config", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == config.read_text(encoding="utf-8")
    shown = cli("accounts", "show", "1001", "--store", target)
    original = cli("accounts", "show", "1001")
    assert shown.returncode == 0 and shown.stdout == original.stdout
    assert (
        cli("rates", "export", "demo-retail", "--store", target).stdout
        == cli("rates", "export", "demo-retail").stdout
    )
    refused = cli("restore", str(archive), "--store", target)
    assert refused.returncode == 1 and "not empty" in refused.stderr
    assert cli("backup", str(tmp_path / "x.tar.gz"), "--config", str(tmp_path / "none.toml")).returncode == 2
