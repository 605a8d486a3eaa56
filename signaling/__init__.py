"""signaling: the Python control plane of the softswitch.

It will hold the SIP stack and B2BUA, routing and billing (see README.md in this folder). Today it
provides the operator command line, ``softswitch``, which starts the media engine as a node.
"""

from __future__ import annotations

__all__: list[str] = []
