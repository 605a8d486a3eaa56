"""`softswitch check-config FILE` and the node's start report a bad key by name, with the file
and the key's path, and a "did you mean" for a misspelt one; TOML and YAML alike. Every
SS_*/SERVER_* name of the reference's master parameter index is accepted as the reference
names it (timers-trace-routing-dialplan.md §15)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli.conftest import Cli

SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec" / "timers-trace-routing-dialplan.md"

GOOD_TOML = """
[sip]
listen = "127.0.0.1:5070"

[parameters]
SS_SIP_TIMEOUT_INVITE = 8
SS_MEDIA_PROXY_PORT_RANGE = "20000,29999"
SS_JITTERBUFFER_MODE = 0
SERVER_BILLING_HOLD_TIME_PRECISION = 6000
SERVER_ALARM_EMAIL = "noc@example.com"

[[mapping_gateway]]
name = "customer"
addresses = ["127.0.0.1"]

[[routing_gateway]]
name = "carrier"
address = "127.0.0.1:5080"
"""

GOOD_YAML = """
sip:
  listen: "127.0.0.1:5070"
parameters:
  SS_SIP_TIMEOUT_INVITE: 8
  SS_ECHOCANCEL: Off
  SERVER_ALARM_ENABLE_EMAIL: On
routing_gateway:
  - name: carrier
    address: "127.0.0.1:5080"
mapping_gateway:
  - name: customer
    addresses: ["127.0.0.1"]
"""


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("name", "text"), [("node.toml", GOOD_TOML), ("node.yaml", GOOD_YAML)])
def test_a_good_file_passes(cli: Cli, tmp_path: Path, name: str, text: str) -> None:
    path = _write(tmp_path, name, text)
    done = cli("check-config", path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"{path}: OK (SIP on 127.0.0.1:5070, media in-process, 1 mapping and 1 routing gateways)"
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "a.toml",
            "[parameters]\nSS_SIP_TIMEOUT_INVITES = 3\n",
            "parameters.SS_SIP_TIMEOUT_INVITES: unknown parameter (did you mean SS_SIP_TIMEOUT_INVITE?)",
        ),
        (
            "b.yaml",
            "parameters:\n  SERVER_BILLING_FEE_PRECISON: 4\n",
            "parameters.SERVER_BILLING_FEE_PRECISON: unknown parameter "
            "(did you mean SERVER_BILLING_FEE_PRECISION?)",
        ),
        ("c.yaml", "sipp:\n  listen: 127.0.0.1:5060\n", "sipp: unknown key (did you mean 'sip'?)"),
        (
            "d.toml",
            '[[routing_gateway]]\nname = "x"\naddress = "127.0.0.1:5080"\npriorty = 2\n',
            "routing_gateway[0].priorty: unknown key (did you mean 'priority'?)",
        ),
        (
            "e.yaml",
            "routing_gateway:\n  - name: x\n    address: 127.0.0.1:99999\n",
            "routing_gateway[0].address: '127.0.0.1:99999': bad port",
        ),
        (
            "f.toml",
            "[parameters]\nSS_ECHOCANCELTAIL = 256\n",
            "parameters.SS_ECHOCANCELTAIL: expected one of 64, 128",
        ),
        ("g.yaml", "parameters:\n  SS_VOICEGAIN: 11\n", "parameters.SS_VOICEGAIN: 11 is outside -10..10"),
        (
            "h.toml",
            '[parameters]\nSS_MEDIAPROXYMODE = "on"\nSS_MEDIA_PROXY_MODE = "off"\n',
            "parameters.SS_MEDIA_PROXY_MODE: the same parameter as SS_MEDIAPROXYMODE; give only one of them",
        ),
        (
            "i.toml",
            "[parameters]\nSS_JITTERBUFFER_MIN = 100\nSS_JITTERBUFFER_DEFAULT = 60\n",
            "parameters.SS_JITTERBUFFER_DEFAULT: 60 ms must lie within SS_JITTERBUFFER_MIN 100",
        ),
        ("j.yaml", "sip:\n  listen: [unclosed\n", "not valid YAML (line 3, column 1)"),
        ("k.toml", "[sip\nlisten = 1\n", "Expected ']' at the end of a table declaration (at line 1"),
        ("l.yaml", "- just\n- a list\n", "expected a mapping of sections"),
        (
            "m.yaml",
            "parameters:\n  SERVER_ALARM_EMAIL: not-an-address\n",
            "'not-an-address' is not an e-mail",
        ),
    ],
)
def test_a_bad_key_is_named_with_the_file(
    cli: Cli, tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = _write(tmp_path, name, text)
    done = cli("check-config", path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"softswitch check-config: {path}: "), done.stderr
    assert message in done.stderr


def test_the_node_refuses_to_start_on_the_same_errors(cli: Cli, tmp_path: Path) -> None:
    path = _write(tmp_path, "node.yaml", "parameters:\n  SS_SIP_TIMEOUT_INVITES: 3\n")
    done = cli("run", "--config", path)
    assert done.returncode == 2
    assert f"{path}: parameters.SS_SIP_TIMEOUT_INVITES: unknown parameter" in done.stderr
    assert "did you mean SS_SIP_TIMEOUT_INVITE" in done.stderr
    missing = cli("check-config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "No such file or directory" in missing.stderr


def test_every_parameter_of_the_reference_index_is_accepted(cli: Cli, tmp_path: Path) -> None:
    """The master index (§15) names each parameter with its default; a file setting every one of
    them to a value of its range is accepted (the wildcard family SERVER_REPORT_* has no names)."""
    index = (
        SPEC.read_text(encoding="utf-8").split("## 15. Master parameter index", 1)[1].split("## 16.", 1)[0]
    )
    names = sorted(set(re.findall(r"^\| \d+ \| `([A-Z0-9_]+)`", index, re.M)) - {"SERVER_REPORT_"})
    assert len(names) >= 55
    values = {
        "SS_SIP_NAT_KEEP_ALIVE_MESSAGE": '"HELLO"',
        "SS_SIP_RESEND_INTERVAL": '"0.5,1,2,4,4,4,4,4,4,4"',
        "SS_TRACE_MASK": '"DEBUG"',
        "SS_GATEWAYASRROUTESORTCONFIG": '"Before gateway ID"',
        "SS_GATEWAYFEERATEROUTESORTCONFIG": '"Before line usage"',
        "SS_GATEWAY_SWITCH_LIMIT": '"None"',
        "SS_MEDIA_PROXY_MODE": '"Must-On"',
        "SS_MEDIA_PROXY_PORT_RANGE": '"10000,39999"',
        "SS_ACCOUNT_INDICATION_METHOD": '"Prompt balance"',
        "IVR_CODEC_PRIORITY": '"g729a,g729,g723,g711a,g711u"',
        "SERVER_ALARM_EMAIL": '""',
        "SERVER_BILLING_FEE_PRECISION": "7",
    }
    switches = re.findall(r"^\| \d+ \| `([A-Z0-9_]+)`[^|]*\| (?:On|Off) \|", index, re.M)
    lines = ["[parameters]"]
    for name in names:
        if name in values:
            value = values[name]
        elif name in switches:
            value = '"On"'
        else:
            default = re.search(rf"`{name}`[^|]*\| ([^|]+) \|", index)
            assert default is not None, name
            value = default.group(1).strip()
            value = value if value.isdigit() else {"None": "0", "—": "30"}.get(value, value)
        lines.append(f"{name} = {value}")
    path = _write(tmp_path, "reference.toml", "\n".join(lines) + "\n")
    done = cli("check-config", path)
    assert done.returncode == 0, f"{done.stderr}\n{Path(path).read_text()}"
    listed = cli("parameters")
    assert listed.returncode == 0
    shown = {line.split()[0] for line in listed.stdout.splitlines()[1:]}
    assert set(names) <= shown
    assert re.search(r"^SS_H323_TIMEOUT_SETUP\s+5\s+accepted only", listed.stdout, re.M)
    assert re.search(r"^SS_MEDIA_PROXY_MODE\s+on\s+= SS_MEDIAPROXYMODE", listed.stdout, re.M)
