"""Login, the verification challenge, logout."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from signaling.api.auth import SESSION_COOKIE, LoginFailed, User
from signaling.web.app import LOGIN_COOKIE, PREFIX, WebManager


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _safe_next(target: str | None) -> str:
    """Only a path of this web manager (never another site) is followed after login."""
    if target and target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target:
        return target
    return PREFIX + "/"


def register(router: APIRouter, web: WebManager) -> None:
    def login_form(
        request: Request,
        *,
        name: str = "",
        error: str = "",
        challenge: bool = False,
        status: int = 200,
        nonce: str | None = None,
    ) -> HTMLResponse:
        nonce = nonce or request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(18)
        issued = web.challenges.issue(web.clock()) if challenge else None
        expired = bool(request.query_params.get("expired"))
        notice = "Your session has expired; please log in again." if expired else ""
        response = web.render(
            request,
            "login.html",
            None,
            status=status,
            csrf=web.csrf.token("login:" + nonce),
            name=name,
            error=error,
            notice=notice,
            challenge=issued,
            next=_safe_next(request.query_params.get("next")),
        )
        response.set_cookie(
            LOGIN_COOKIE, nonce, httponly=True, samesite="strict", secure=web.secure_cookies, path=PREFIX
        )
        return response

    @router.get("/login")
    async def login_page(request: Request) -> Response:
        # an address already past the threshold gets the question at once
        needed = await web.db(web.users.challenge_required, "", _client(request))
        return login_form(request, challenge=needed)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        nonce = request.cookies.get(LOGIN_COOKIE)
        if not nonce or not web.csrf.check("login:" + nonce, form.get("csrf")):
            return login_form(request, error="The login form expired; please try again.", status=403)
        name, password, source = form.get("name", "").strip(), form.get("password", ""), _client(request)
        needed = await web.db(web.users.challenge_required, name, source)
        verified = False
        if form.get("challenge_id"):
            verified = web.challenges.verify(form["challenge_id"], form.get("answer", ""), web.clock())
        if needed and not verified:
            # T75: beyond the threshold a correct password alone does not log in
            error = (
                "Answer the verification question."
                if form.get("challenge_id") is None
                else ("The verification answer was wrong; here is a new question.")
            )
            return login_form(request, name=name, error=error, challenge=True, status=401, nonce=nonce)
        try:
            user: User = await web.db(web.users.authenticate, name, password, source)
        except LoginFailed as exc:
            error = str(exc)
            if exc.locked_until is not None:
                error = f"Too many failed logins: try again after {exc.locked_until:%H:%M:%S} UTC."
            return login_form(
                request, name=name, error=error, challenge=exc.challenge_required, status=401, nonce=nonce
            )
        token = await web.db(web.users.issue_session, user, source)
        response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
        web.set_session_cookie(response, token)
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        page = await web.page(request)
        await web.form(request, page)
        await web.db(web.users.revoke, page.token)
        response = RedirectResponse(PREFIX + "/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
