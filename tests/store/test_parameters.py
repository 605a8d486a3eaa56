"""System parameters stored as overrides, checked by name, and seen by the nodes' reload poll."""

from __future__ import annotations

import pytest

from signaling import params
from signaling.store import Store, ValidationError


def test_overrides_are_stored_as_text_and_resolve_like_a_configuration_file(store: Store) -> None:
    store.set_parameter("SS_SIP_TIMEOUT_INVITE", 15)
    store.set_parameter("SS_SIP_STOP_SWITCH_AFTER_SDP", False)
    store.set_parameter("SERVER_WORK_CALENDAR_ENABLED", "Off")
    assert store.parameters() == {
        "SERVER_WORK_CALENDAR_ENABLED": "Off",
        "SS_SIP_STOP_SWITCH_AFTER_SDP": "0",
        "SS_SIP_TIMEOUT_INVITE": "15",
    }
    resolved = params.resolve({k: v for k, v in store.parameters().items() if k.startswith("SS_")})
    assert resolved["SS_SIP_TIMEOUT_INVITE"] == 15
    assert resolved["SS_SIP_STOP_SWITCH_AFTER_SDP"] is False
    assert store.server_parameter("SERVER_WORK_CALENDAR_ENABLED") is False
    assert store.server_parameter("SERVER_PERIOD_RATE_ENABLED") is False  # the reference: off until enabled


def test_changing_a_parameter_bumps_the_config_version(store: Store) -> None:
    before = store.config_version()
    store.set_parameter("SS_RTP_TIMEOUT", 60)
    assert store.config_version() == before + 1
    store.set_parameter("SS_RTP_TIMEOUT", 90)
    assert store.parameters()["SS_RTP_TIMEOUT"] == "90"
    store.reset_parameter("SS_RTP_TIMEOUT")
    assert "SS_RTP_TIMEOUT" not in store.parameters()
    assert store.config_version() == before + 3


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "SS_SIP_TIMEOUT_INVTE",
            10,
            "SS_SIP_TIMEOUT_INVTE: unknown parameter (did you mean SS_SIP_TIMEOUT_INVITE?)",
        ),
        ("SS_SIP_TIMEOUT_INVITE", 0, "SS_SIP_TIMEOUT_INVITE: 0 is outside 1..600"),
        (
            "SERVER_PAY_DELAY_CUSTOMER_EXPIRE_DAY",
            -1,
            "SERVER_PAY_DELAY_CUSTOMER_EXPIRE_DAY: -1 is outside 0..36500",
        ),
        ("SERVER_PERIOD_RATE_ENABLED", "maybe", "SERVER_PERIOD_RATE_ENABLED: expected On or Off (1 or 0)"),
        ("FORWARD_SIGNAL_REWRITE_SEQUENCE", 2, "FORWARD_SIGNAL_REWRITE_SEQUENCE: 2 is outside 0..1"),
    ],
)
def test_a_bad_parameter_is_refused_naming_it(store: Store, name: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        store.set_parameter(name, value)  # type: ignore[arg-type]
    assert str(caught.value) == message
    assert store.parameters() == {}
