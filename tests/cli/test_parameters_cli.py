"""``softswitch parameters set|reset|stored``: the store's parameter overrides from the command
line, checked by name and value as the API checks them; running nodes take them up at their next
reload (tests/callproc/test_node_parameters_live.py shows that through the API, the same store)."""

from __future__ import annotations

from pathlib import Path

from signaling.store import open_store
from tests.cli.conftest import Cli


def _stored(data_dir: Path) -> dict[str, str]:
    with open_store(f"sqlite:///{data_dir / 'softswitch.db'}", migrate=False) as store:
        return store.parameters()


def test_set_list_and_reset_an_override(cli: Cli, data_dir: Path) -> None:
    assert cli("init").returncode == 0
    done = cli("parameters", "set", "SS_SIP_TIMEOUT_INVITE", "12")
    assert done.returncode == 0, done.stderr
    assert "SS_SIP_TIMEOUT_INVITE = 12" in done.stdout
    assert _stored(data_dir) == {"SS_SIP_TIMEOUT_INVITE": "12"}
    listed = cli("parameters", "stored")
    assert listed.returncode == 0
    assert [line.split() for line in listed.stdout.splitlines()[1:]] == [["SS_SIP_TIMEOUT_INVITE", "12"]]
    dropped = cli("parameters", "reset", "SS_SIP_TIMEOUT_INVITE")
    assert dropped.returncode == 0 and "override dropped" in dropped.stdout
    assert _stored(data_dir) == {}
    again = cli("parameters", "reset", "SS_SIP_TIMEOUT_INVITE")
    assert again.returncode == 0 and "no override stored" in again.stdout


def test_a_bad_name_or_value_is_refused_naming_it_and_nothing_is_stored(cli: Cli, data_dir: Path) -> None:
    assert cli("init").returncode == 0
    misspelt = cli("parameters", "set", "SS_SIP_TIMEOUT_INVITES", "12")
    assert misspelt.returncode == 1
    assert (
        "SS_SIP_TIMEOUT_INVITES" in misspelt.stderr
        and "did you mean SS_SIP_TIMEOUT_INVITE" in misspelt.stderr
    )
    bad = cli("parameters", "set", "SS_SIP_TIMEOUT_INVITE", "soon")
    assert bad.returncode == 1 and "SS_SIP_TIMEOUT_INVITE" in bad.stderr
    assert _stored(data_dir) == {}
    missing_value = cli("parameters", "set", "SS_SIP_TIMEOUT_INVITE")
    assert missing_value.returncode == 2


def test_without_a_store_it_says_how_to_make_one(cli: Cli) -> None:
    done = cli("parameters", "stored")
    assert done.returncode == 2 and "softswitch init" in done.stderr
