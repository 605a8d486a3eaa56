"""The web manager at ``/manage``: server-rendered pages (Jinja2, inline SVG charts, a live
dashboard over Server-Sent Events) in the same FastAPI application as the REST API, logging in
with the API's users. See docs/web-manager.md.

```python
app = create_app(context)                       # signaling.api
web = WebManager(context, node=NodeLive(node))  # the node's live view (signaling.web.live)
web.install(app)                                # /manage, its static files, Web Access Control
```
"""

from signaling.web.app import PREFIX, AlarmFeed, AlarmView, NodeView, WebManager
from signaling.web.live import NodeLive

__all__ = ["PREFIX", "AlarmFeed", "AlarmView", "NodeLive", "NodeView", "WebManager"]
