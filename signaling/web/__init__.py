"""The web manager at ``/manage``: server-rendered pages (Jinja2, inline SVG charts, a live
dashboard over Server-Sent Events) in the same FastAPI application as the REST API, logging in
with the API's accounts. See docs/web-manager.md."""

from signaling.web.app import PREFIX, AlarmView, AuthBackend, LoginRefused, WebManager, WebUser

__all__ = ["PREFIX", "AlarmView", "AuthBackend", "LoginRefused", "WebManager", "WebUser"]
