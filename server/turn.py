"""ICE server lists for browsers, with time-limited TURN credentials.

TURN uses the TURN REST scheme that coturn implements with ``use-auth-secret``:
``username = "<expiry unix time>:<user id>"`` and
``credential = base64(HMAC-SHA1(secret, username))``. No fixed TURN password ever reaches
a page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any


def turn_credentials(
    secret: str, user_id: str, ttl_s: int, now: float | None = None
) -> tuple[str, str]:
    expiry = int(now if now is not None else time.time()) + ttl_s
    username = f"{expiry}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(
    stun_urls: list[str],
    turn_urls: list[str],
    turn_secret: str | None,
    user_id: str,
    ttl_s: int = 3600,
) -> list[dict[str, Any]]:
    """The ``RTCIceServer`` list a client receives in ``welcome``."""
    servers: list[dict[str, Any]] = []
    if stun_urls:
        servers.append({"urls": list(stun_urls)})
    if turn_urls and turn_secret:
        username, credential = turn_credentials(turn_secret, user_id, ttl_s)
        servers.append({"urls": list(turn_urls), "username": username, "credential": credential})
    return servers
