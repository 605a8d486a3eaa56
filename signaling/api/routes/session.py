"""``/auth``: log in (a session token, also set as the web manager's cookie), log out, who am I;
``/users``: operator users (administrators only)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from signaling.api.auth import SESSION_COOKIE, LoginFailed, Role, User
from signaling.api.deps import AdminUser, CurrentUser, context_of, session_token
from signaling.api.errors import ApiError

router = APIRouter()


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    id: int
    name: str
    role: Role
    account_id: int | None
    disabled: bool
    created_at: datetime


class Session(BaseModel):
    token: str
    expires_at: datetime
    user: UserOut


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    role: Role
    password: str = Field(min_length=1, max_length=1024)
    account_id: int | None = None


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    account_id: int | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=1024)


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        name=user.name,
        role=user.role,
        account_id=user.account_id,
        disabled=user.disabled,
        created_at=user.created_at,
    )


def client_ip(request: Request) -> str:
    return request.client.host if request.client is not None else ""


@router.post("/auth/login", tags=["auth"], responses={401: {}, 429: {}})
def login(body: Login, request: Request, response: Response) -> Session:
    """Check a name and password; a session token (send it as ``Authorization: Bearer``), also set
    as the ``softswitch_session`` cookie. 401 when wrong (``challenge_required`` says whether the
    web manager must now show its challenge), 429 while the name or address is locked out."""
    ctx = context_of(request)
    try:
        user = ctx.users.authenticate(body.name, body.password, client_ip(request))
    except LoginFailed as exc:
        status = 429 if exc.locked_until is not None else 401
        error = ApiError(
            status,
            str(exc),
            challenge_required=exc.challenge_required,
            locked_until=exc.locked_until.isoformat() if exc.locked_until else None,
        )
        if exc.locked_until is not None:
            error.headers["Retry-After"] = str(max(1, int((exc.locked_until - ctx.clock()).total_seconds())))
        raise error from None
    token = ctx.users.issue_session(user, client_ip(request))
    expires = ctx.users.session_expiry(token)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ctx.users.settings.session_ttl.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=ctx.secure_cookie,
        path="/",
    )
    return Session(token=token, expires_at=expires, user=user_out(user))


@router.post("/auth/logout", tags=["auth"], status_code=204)
def logout(request: Request, user: CurrentUser) -> Response:
    """End this session (the token stops working at once)."""
    token = session_token(request)
    if token is not None:
        context_of(request).users.revoke(token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/auth/me", tags=["auth"])
def me(user: CurrentUser) -> UserOut:
    """The logged-in user."""
    return user_out(user)


@router.get("/users", tags=["users"])
def list_users(request: Request, _admin: AdminUser) -> list[UserOut]:
    return [user_out(u) for u in context_of(request).users.list()]


@router.post("/users", tags=["users"], status_code=201)
def add_user(body: NewUser, request: Request, _admin: AdminUser) -> UserOut:
    """Create an operator user (an ``agent`` needs ``account_id``, its agent account)."""
    users = context_of(request).users
    return user_out(users.add(body.name, body.role, body.password, account_id=body.account_id))


@router.get("/users/{name}", tags=["users"])
def get_user(name: str, request: Request, _admin: AdminUser) -> UserOut:
    return user_out(context_of(request).users.get(name))


@router.patch("/users/{name}", tags=["users"])
def change_user(name: str, body: UserChange, request: Request, _admin: AdminUser) -> UserOut:
    """Change role, agent account, disabled or password (the user's sessions end)."""
    users = context_of(request).users
    changed = users.update(
        name, role=body.role, account_id=body.account_id, disabled=body.disabled, password=body.password
    )
    return user_out(changed)


@router.delete("/users/{name}", tags=["users"], status_code=204)
def remove_user(name: str, request: Request, _admin: AdminUser) -> Response:
    context_of(request).users.remove(name)
    return Response(status_code=204)
