"""``softswitch parameters set|reset|stored``: the store's parameter overrides from the command
line, checked by name and value as the API checks them; running nodes take them up at their next
reload (tests/callproc/test_node_parameters_live.py shows that through the API, the same store),
except the parameters read at start only, which say so (signaling/params.py ``TAKES_EFFECT``;
security-quality-timerouting-failover.md §B.6, §B.10, behaviour 38)."""

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
    assert "SS_SIP_TIMEOUT_INVITE = 12 (stored; running nodes take it at their next reload)" in done.stdout
    assert _stored(data_dir) == {"SS_SIP_TIMEOUT_INVITE": "12"}
    listed = cli("parameters", "stored")
    assert listed.returncode == 0
    assert [line.split() for line in listed.stdout.splitlines()[1:]] == [
        ["SS_SIP_TIMEOUT_INVITE", "12", "next", "reload"]
    ]
    dropped = cli("parameters", "reset", "SS_SIP_TIMEOUT_INVITE")
    assert dropped.returncode == 0
    assert "override dropped (running nodes take it at their next reload)" in dropped.stdout
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


def test_a_restart_parameter_says_it_waits_for_the_next_restart(cli: Cli, data_dir: Path) -> None:
    assert cli("init").returncode == 0
    done = cli("parameters", "set", "SS_RTP_TIMEOUT", "45")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "SS_RTP_TIMEOUT = 45 (stored; it takes effect at each node's next restart: read at start only)"
    )
    assert _stored(data_dir) == {"SS_RTP_TIMEOUT": "45"}
    ports = cli("parameters", "set", "SS_MEDIA_PROXY_PORT_RANGE", "20000,29999")  # an alias: the same
    assert ports.returncode == 0 and "next restart" in ports.stdout
    unused = cli("parameters", "set", "SS_H323_TIMEOUT_SETUP", "3")
    assert unused.returncode == 0
    assert "SS_H323_TIMEOUT_SETUP = 3 (stored; it changes nothing in this softswitch: accepted only)" in (
        unused.stdout
    )
    gain = cli("parameters", "set", "SS_VOICEGAIN", "6")  # read per call: the next call takes it
    assert gain.returncode == 0
    assert "SS_VOICEGAIN = 6 (stored; running nodes take it at their next reload)" in gain.stdout
    live = cli("parameters", "set", "SS_QOS_SIGNAL", "46")
    assert live.returncode == 0 and "next reload" in live.stdout
    listed = cli("parameters", "stored")
    assert listed.returncode == 0
    rows = {line.split()[0]: line.split(None, 2)[2] for line in listed.stdout.splitlines()[1:]}
    assert rows == {
        "SS_MEDIA_PROXY_PORT_RANGE": "restart required",
        "SS_QOS_SIGNAL": "next reload",
        "SS_H323_TIMEOUT_SETUP": "never (accepted only)",
        "SS_RTP_TIMEOUT": "restart required",
        "SS_VOICEGAIN": "next reload",
    }
    dropped = cli("parameters", "reset", "SS_RTP_TIMEOUT")
    assert dropped.returncode == 0
    assert "override dropped (it takes effect at each node's next restart" in dropped.stdout


def test_the_parameter_list_marks_when_each_takes_effect(cli: Cli) -> None:
    listed = cli("parameters")
    assert listed.returncode == 0
    header, *lines = listed.stdout.splitlines()
    assert "TAKES EFFECT" in header
    start = header.index("TAKES EFFECT")
    marks = {line.split()[0]: line[start:].split("  ")[0].strip() for line in lines}
    assert marks["SS_RTP_TIMEOUT"] == marks["SS_ECHOCANCELTAIL"] == "restart required"
    assert marks["SS_TRACE_CALL_FILE_SIZE"] == "restart required"
    assert marks["SS_SIP_TIMEOUT_INVITE"] == marks["SS_QOS_SIGNAL"] == "next reload"
    assert marks["SS_H323_TIMEOUT_SETUP"] == "never (accepted only)"
    assert marks["SERVER_QUERY_ONE_PAGE_SIZE"] == "next use"
