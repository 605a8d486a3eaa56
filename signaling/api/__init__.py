"""The REST API (FastAPI) over the store's admin API and the running node (docs/api.md).

``signaling.api.auth``: operator users, passwords, sessions and the lockout (no web framework
needed); ``signaling.api.app.create_app(context)``: the ASGI application.
"""
