"""End to end: `softswitch run` serves the API over HTTPS on its own loop; a SIPp call through
the node shows up as a live call (API and `softswitch calls`), is hung up through the API
(`softswitch calls hangup`), and its CDR is found through the API (issue 7: REST API, live calls;
web manager §7.1: same accounts; CAP-13.1)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import queue
import signal
import ssl
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

from signaling.store import open_store
from tests.b2bua_harness import port_block, sipp, wait_bound
from tests.callproc.world import basic_world

CALLEE = ["-s", "12125550100"]


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "softswitch test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "api.crt", directory / "api.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _lines(stream: IO[str], out: queue.Queue[str]) -> None:
    for line in stream:
        out.put(line)


def _wait_for(lines: queue.Queue[str], seen: list[str], text: str, within: float) -> None:
    deadline = time.monotonic() + within
    while not any(text in line for line in seen):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{text!r} not printed; output so far:\n{''.join(seen)}")
        try:
            seen.append(lines.get(timeout=left))
        except queue.Empty:
            continue


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "signaling.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.timeout(120)
def test_live_call_listed_and_hung_up_through_the_https_api(tmp_path: Path) -> None:
    with port_block() as base:
        sip_port, carrier_port, api_port = base, base + 1, base + 5
        customer_port, media_base = base + 10, base + 20
        url = f"sqlite:///{tmp_path / 'node.db'}"
        with open_store(url) as store:
            basic_world(
                store,
                customer_rates=(("1", "0.6", 1, "0.6", 1),),
                gateways=({"name": "carrier", "prefixes": ("1",), "port": carrier_port},),
                mapping={"addresses": ("127.0.0.1",)},
            )
        cert, key = _self_signed(tmp_path)
        config = tmp_path / "node.toml"
        config.write_text(
            f'[sip]\nlisten = "127.0.0.1:{sip_port}"\n'
            f"[parameters]\nSS_MEDIAPROXYPORT_START = {base + 60}\nSS_MEDIAPROXYPORT_END = {base + 99}\n"
            f'[store]\nurl = "{url}"\nnode = "api-node"\n'
            f'[api]\nlisten = "127.0.0.1:{api_port}"\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "signaling.cli", "run", "--config", str(config)],
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert proc.stderr is not None
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=_lines, args=(proc.stderr, lines), daemon=True)
        reader.start()
        seen: list[str] = []
        try:
            _wait_for(lines, seen, "node ready", 30)
            output = "".join(seen)
            password = output.split("with password\n\n", 1)[1].split("\n", 1)[0].strip()
            assert len(password) >= 20
            assert output.count(password) == 1, "the generated password is shown once, and only there"
            assert f"https://127.0.0.1:{api_port}/api/v1" in output

            api = f"https://127.0.0.1:{api_port}"
            tls = ssl.create_default_context(cafile=str(cert))
            with httpx.Client(base_url=api, verify=tls, timeout=10) as http:
                assert http.get("/api/v1/calls").status_code == 401
                spec = http.get("/api/openapi.json").json()
                assert "/api/v1/calls/{call_id}" in spec["paths"]

                env = {**os.environ, "SOFTSWITCH_TOKEN_FILE": str(tmp_path / "cfg" / "token.json")}
                secret = tmp_path / "password"
                secret.write_text(password + "\n")
                login = _cli(
                    "login", "--api", api, "--user", "admin", "--password-file", str(secret),
                    "--cacert", str(cert), env=env,
                )  # fmt: skip
                assert login.returncode == 0, login.stderr
                token_file = tmp_path / "cfg" / "token.json"
                assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
                token = http.post("/api/v1/auth/login", json={"name": "admin", "password": password}).json()
                http.headers["Authorization"] = f"Bearer {token['token']}"

                async def call() -> None:
                    carrier = asyncio.create_task(
                        sipp("uas_answer.xml", port=carrier_port, media_port=media_base, rtp_echo=True)
                    )
                    await wait_bound(carrier_port, within=15)
                    customer = asyncio.create_task(
                        sipp(
                            "uac_wait_bye.xml", port=customer_port, target=f"127.0.0.1:{sip_port}",
                            media_port=media_base + 10, extra=CALLEE, timeout=30,
                        )
                    )  # fmt: skip
                    live: list[dict[str, object]] = []
                    listings = []
                    deadline = time.monotonic() + 30  # for the call to be answered
                    while time.monotonic() < deadline:
                        response = await asyncio.to_thread(http.get, "/api/v1/calls")
                        assert response.status_code == 200, response.text
                        listings.append(response.json())
                        live = [c for c in response.json() if c["state"] == "answered"]
                        if live or customer.done():
                            break
                        await asyncio.sleep(0.1)
                    if not live:
                        while not lines.empty():
                            seen.append(lines.get())
                        running = "still running"
                        parts = {
                            "last listings": listings[-3:],
                            "customer": (await customer).output[-3000:] if customer.done() else running,
                            "carrier": (await carrier).output[-3000:] if carrier.done() else running,
                            "node stderr": "".join(seen)[-4000:],
                        }
                        # pytrace=False: the report leads with what happened, not this source
                        pytest.fail("the call was not answered within 30 s\n" + "\n".join(
                            f"--- {name}:\n{value}" for name, value in parts.items()
                        ), pytrace=False)  # fmt: skip
                    (only,) = live
                    assert only["callee"] == "12125550100" and only["ingress"] == "cust"
                    assert only["gateway"] == "carrier"
                    listed = await asyncio.to_thread(_cli, "calls", "--cacert", str(cert), env=env)
                    assert listed.returncode == 0, listed.stderr
                    assert str(only["call_id"]) in listed.stdout and "answered" in listed.stdout
                    await asyncio.sleep(1.0)  # a second of conversation
                    hung = await asyncio.to_thread(
                        _cli, "calls", "--cacert", str(cert), "hangup", str(only["call_id"]), env=env
                    )
                    assert hung.returncode == 0, hung.stderr
                    uac = await customer
                    assert uac.returncode == 0, uac.output  # it received the switch's BYE
                    assert (await carrier).returncode == 0
                    gone = await asyncio.to_thread(http.get, "/api/v1/calls")
                    assert gone.json() == []
                    again = await asyncio.to_thread(http.delete, f"/api/v1/calls/{only['call_id']}")
                    assert again.status_code == 404

                asyncio.run(call())

                now = dt.datetime.now(dt.UTC)
                window = {
                    "start": (now - dt.timedelta(hours=1)).isoformat(),
                    "end": (now + dt.timedelta(hours=1)).isoformat(),
                }
                cdrs: list[dict[str, object]] = []
                for _ in range(50):
                    cdrs = http.get("/api/v1/cdrs", params=window).json()["cdrs"]
                    if cdrs:
                        break
                    time.sleep(0.1)
                (cdr,) = cdrs
                assert cdr["termination_reason"] == "Operator hangup"
                assert cdr["routing_gateway"] == "carrier" and cdr["mapping_gateway"] == "cust"
                assert cdr["answer_time"] is not None and int(str(cdr["hold_ms"])) >= 900
                assert cdr["fee"] != "0.0000000"
                status = http.get("/api/v1/gateways/status").json()
                carrier_status = next(g for g in status if g["name"] == "carrier")
                assert carrier_status["lines_in_use"] == 0 and carrier_status["calls_today"] == 1

                # Prometheus scrapes without a login; the figures count the call just made
                scrape = http.get("/metrics", headers={"Authorization": ""})
                assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
                families = {f.name: f for f in text_string_to_metric_families(scrape.text)}
                assert families["softswitch_calls_answered"].samples[0].value == 1
                assert families["softswitch_calls_active"].samples[0].value == 0
                # the alarms and the defence need a login, and say what they hold
                assert httpx.get(f"{api}/api/v1/alarms", verify=tls).status_code == 401
                alarms = http.get("/api/v1/alarms").json()
                assert {"active", "history", "gateways", "defence"} <= alarms.keys()
                (gateway,) = [g for g in alarms["gateways"] if g["gateway"] == "carrier"]
                assert (gateway["attempts"], gateway["answered"], gateway["active"]) == (1, 1, 0)
                blocked = http.post(
                    "/api/v1/defence/blacklist", json={"address": "192.0.2.0/24", "seconds": 60}
                )
                assert blocked.status_code == 201 and blocked.json()["network"] == "192.0.2.0/24"
                assert http.post("/api/v1/defence/blacklist", json={"address": "nonsense"}).status_code == 422
                listed = http.get("/api/v1/defence").json()
                assert [e["network"] for e in listed["blacklist"]] == ["192.0.2.0/24"]
                assert http.delete("/api/v1/defence/blacklist/192.0.2.0/24").status_code == 204
                assert http.delete("/api/v1/defence/blacklist/192.0.2.0/24").status_code == 404
                assert http.get("/api/v1/defence").json()["blacklist"] == []
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            reader.join(timeout=5)
            proc.stderr.close()
        while not lines.empty():
            seen.append(lines.get())
        assert proc.returncode == 0, "".join(seen)
        assert "stopped:" in "".join(seen)
