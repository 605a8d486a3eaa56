"""Alarm e-mail (reference behaviour 81): with ``SERVER_ALARM_ENABLE_EMAIL`` On and
``SERVER_ALARM_EMAIL`` set, each round of the alarm board that raised, changed or cleared
alarms sends one message to that address through the SMTP relay of ``[alarms] smtp`` (default
127.0.0.1:25, the machine's own mail transfer agent), from ``[alarms] mail_from``.

The two parameters are read at each round that has events (a stored change applies at once):
the store's override, else the node file's, else the default (Off, empty), as billing's
SERVER_* are. Sending runs in a worker thread with a 10 s timeout; a relay that refuses or
cannot be reached is logged (a warning) and the events stay on the board and in its history:
mail is a notification, not the record.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from signaling.observe.alarms import AlarmEvent
from signaling.store import parameters as server_parameters

log = logging.getLogger("softswitch.observe")

#: seconds an SMTP exchange may take
SMTP_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class MailSettings:
    enabled: bool
    to: str


def mail_settings(stored: Mapping[str, str], base: Mapping[str, Any]) -> MailSettings:
    """The two parameters: ``stored`` (the store's overrides, as text) over ``base`` (the node
    file's typed values) over the defaults."""

    def value(name: str) -> object:
        if name not in stored and name in base:
            return base[name]
        return server_parameters.server_value(name, stored.get(name))

    return MailSettings(bool(value("SERVER_ALARM_ENABLE_EMAIL")), str(value("SERVER_ALARM_EMAIL") or ""))


def compose(events: Sequence[AlarmEvent], to: str, sender: str, node: str) -> EmailMessage:
    """One message for one round's events: the subject names the first, the body lists all."""
    first = events[0]
    subject = (
        f"[{node}] alarm {first.action}: {first.alarm.get('severity', '')} "
        f"{first.alarm.get('kind', '')} {first.alarm.get('subject', '')}".rstrip()
    )
    if len(events) > 1:
        subject += f" (+{len(events) - 1} more)"
    lines = []
    for e in events:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.at))
        a = e.alarm
        lines.append(
            f"{stamp} UTC  {e.action:8s} {a.get('severity', ''):8s} {a.get('kind', '')} "
            f"{a.get('subject', '')}: {a.get('message', '')}"
        )
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    message.set_content("\n".join(lines) + "\n")
    return message


def default_sender() -> str:
    return f"softswitch@{socket.gethostname() or 'localhost'}"


def send(message: EmailMessage, relay: tuple[str, int]) -> None:
    """Deliver ``message`` through ``relay`` (blocking: a worker thread's)."""
    with smtplib.SMTP(relay[0], relay[1], timeout=SMTP_TIMEOUT) as smtp:
        smtp.send_message(message)
