"""The gateways' codec settings over the REST API (transcoding spec §3.2: "Additional Settings >
Codec" of mapping and routing gateways): set, read back, and refused with the field named when
the call path could not use them."""

from __future__ import annotations

from tests.api.conftest import clock
from tests.api.conftest_app import Api, api

__all__ = ["api", "clock"]

V1 = "/api/v1"


def test_codec_settings_round_trip_and_bad_ones_are_refused(api: Api) -> None:
    admin = api.login("root")
    vendor = admin.post(f"{V1}/accounts", json={"code": "v1", "kind": "vendor"}).json()["id"]
    settings = {
        "codecs": ["G729", "PCMA"],
        "codec_mode": "specified",
        "allow_transcoding": True,
        "g729_mode": "both",
    }
    made = admin.post(
        f"{V1}/routing-gateways",
        json={"name": "carrier", "host": "198.51.100.7", "account_id": vendor, **settings},
    )
    assert made.status_code == 201, made.text
    assert {k: made.json()[k] for k in settings} == settings
    rid = made.json()["id"]
    auto = admin.patch(f"{V1}/routing-gateways/{rid}", json={"codec_mode": "auto", "codecs": []})
    assert auto.status_code == 200 and auto.json()["codec_mode"] == "auto"
    for bad, field in (
        ({"codec_mode": "specified", "codecs": []}, "codecs"),
        ({"codecs": ["PCMA/8000"]}, "codecs"),
        ({"g729_mode": "g729b"}, "g729_mode"),
    ):
        refused = admin.patch(f"{V1}/routing-gateways/{rid}", json=bad)
        assert refused.status_code == 422 and refused.json()["field"] == field, (bad, refused.text)
    assert admin.get(f"{V1}/routing-gateways/{rid}").json()["codec_mode"] == "auto", "nothing half-applied"
