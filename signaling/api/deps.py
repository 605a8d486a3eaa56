"""Request dependencies: the context, the logged-in user, role checks, the user's admin API.

Other modules that add routes to the same app (the web manager, metrics) use these too:

```python
from signaling.api.deps import CurrentUser, admin_of, context_of, require_role
@router.get("/thing")
def thing(user: CurrentUser, request: Request) -> ...:
    admin = admin_of(request, user)            # the store's Admin under the user's scope
```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from signaling.api.auth import SESSION_COOKIE, InvalidSession, Role, User
from signaling.api.context import ApiContext
from signaling.api.errors import ApiError
from signaling.store import Admin


def context_of(request: Request) -> ApiContext:
    context = request.app.state.context
    assert isinstance(context, ApiContext)
    return context


def session_token(request: Request) -> str | None:
    """The bearer token of the request, else its session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE) or None


def current_user(request: Request) -> User:
    token = session_token(request)
    if token is None:
        error = ApiError(401, "authentication required: log in (POST /api/v1/auth/login) and send the token")
        error.headers["WWW-Authenticate"] = "Bearer"
        raise error
    try:
        user = context_of(request).users.resolve(token)
    except InvalidSession as exc:
        error = ApiError(401, str(exc))
        error.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        raise error from None
    request.state.user = user
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require_role(*roles: Role) -> Callable[[User], User]:
    """A dependency refusing (403) users of other roles."""

    def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise ApiError(403, f"this needs the role {' or '.join(roles)}; {user.name} is {user.role}")
        return user

    return check


#: Administrators only (users, system parameters).
AdminUser = Annotated[User, Depends(require_role("admin"))]
#: Administrators and operators (what agents never see: routing, live gateway state).
StaffUser = Annotated[User, Depends(require_role("admin", "operator"))]


def admin_of(request: Request, user: User) -> Admin:
    """The store's admin API under ``user``'s scope (operators act with the administrator's)."""
    return context_of(request).users.admin_for(user)
