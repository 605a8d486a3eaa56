"""Structured logs: the JSON formatter, the Call-ID context, secrets masked in both formats, and
the node started with ``[log] format = "json"`` writing JSON lines without the store password."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

from signaling.observe.logs import JsonFormatter, call_context, configure, redact


def test_redaction_masks_url_passwords_password_values_and_authorization() -> None:
    assert (
        redact("store postgresql://bill:s3cr3t@db/x: refused") == "store postgresql://bill:***@db/x: refused"
    )
    assert redact("login password=hunter2 ok") == "login password=*** ok"
    assert redact('{"password": "abc", "user": "u"}') == '{"password": "***", "user": "u"}'
    assert redact("gateway_secret: xyz") == "gateway_secret: ***"
    assert redact('Proxy-Authorization: Digest username="a", response="9f"\r\nVia: x') == (
        "Proxy-Authorization: ***\r\nVia: x"
    )
    assert (
        redact("INVITE sip:100@10.0.0.1 from 10.0.0.2:5060") == "INVITE sip:100@10.0.0.1 from 10.0.0.2:5060"
    )


def _logger(stream: io.StringIO, formatter: logging.Formatter) -> logging.Logger:
    log = logging.getLogger("softswitch.test.logs")
    log.handlers[:] = []
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    return log


def test_json_lines_carry_the_call_id_from_the_context_or_the_record() -> None:
    stream = io.StringIO()
    log = _logger(stream, JsonFormatter())
    log.info("no call here")
    token = call_context.set("abc@host")
    try:
        log.warning("call %s: media refused", "abc@host")
    finally:
        call_context.reset(token)
    log.info("refused", extra={"call_id": "xyz", "status": 403, "peer": ("10.0.0.2", 5060)})
    try:
        raise ValueError("password=topsecret")
    except ValueError:
        log.exception("failed with postgresql://u:pw@h/db")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert "call_id" not in lines[0] and lines[0]["level"] == "info" and lines[0]["logger"] == log.name
    assert lines[0]["ts"].endswith("Z") and "T" in lines[0]["ts"]
    assert lines[1]["call_id"] == "abc@host" and lines[1]["message"] == "call abc@host: media refused"
    assert (
        lines[2]["call_id"] == "xyz"
        and lines[2]["status"] == 403
        and lines[2]["peer"] == "('10.0.0.2', 5060)"
    )
    assert lines[3]["message"] == "failed with postgresql://u:***@h/db"
    assert "topsecret" not in lines[3]["exception"] and "ValueError" in lines[3]["exception"]


def test_configure_text_and_json() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure("text", "warning", stream)
        logging.getLogger("softswitch.x").warning("token=abc123 for %s", "me")
        logging.getLogger("softswitch.x").info("hidden")
        configure("json", "info", stream)
        logging.getLogger("softswitch.x").info("shown")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    text, json_line = stream.getvalue().splitlines()
    assert text.endswith("WARNING softswitch.x: token=*** for me")
    assert json.loads(json_line)["message"] == "shown"


def test_node_logs_json_and_never_the_store_password(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text(
        '[sip]\nlisten = "127.0.0.1:51498"\n'
        "[parameters]\nSS_MEDIAPROXYPORT_START = 51400\nSS_MEDIAPROXYPORT_END = 51497\n"
        '[store]\nurl = "postgresql://billing:Sup3rSecret@127.0.0.1:9/softswitch"\n'
        '[log]\nformat = "json"\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "signaling.cli", "run", "--config", str(cfg)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Sup3rSecret" not in proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    [error] = [r for r in lines if r["level"] == "error"]
    assert error["message"].startswith("store postgresql://billing:***@127.0.0.1:9/softswitch: ")
