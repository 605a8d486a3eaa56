"""CSRF protection: every form carries a token tied to the login session.

The token is an HMAC of the session token under a secret of this process, so it needs no
storage, differs per session, and is useless to anyone who does not hold the session cookie
(which the browser never lets another site read: it is HttpOnly and SameSite=Strict). The login
form, used before there is a session, is tied to a pre-session cookie the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


class CsrfTokens:
    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def token(self, session: str) -> str:
        mac = hmac.new(self._secret, b"csrf:" + session.encode(), hashlib.sha256)
        return mac.hexdigest()[:40]

    def check(self, session: str | None, token: str | None) -> bool:
        if not session or not token:
            return False
        return hmac.compare_digest(self.token(session), token)
