"""Agent passwords, agent session tokens and visitor tickets.

Passwords are stored as salted scrypt hashes. An agent who logs in receives a short-lived
JWT in an HttpOnly cookie. A visitor receives a ticket: a JWT bound to their queue entry,
which lets them resume after a reload and nothing else. Tokens are always decoded with a
pinned algorithm and a required ``exp``/``iat``/``sub``/``aud``/``iss``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, Final

import jwt

ALGORITHM: Final = "HS256"
ISSUER: Final = "humandesk"
AGENT_AUDIENCE: Final = "humandesk:agent"
VISITOR_AUDIENCE: Final = "humandesk:visitor"
PRIORITY_AUDIENCE: Final = "humandesk:priority"
SESSION_COOKIE: Final = "hd_session"

# scrypt parameters: about 50 ms and 16 MiB per check on one core.
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """A self-describing salted scrypt hash of ``password``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    salt_b64, digest_b64 = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"scrypt${_N}${_R}${_P}${salt_b64}${digest_b64}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a hash made by :func:`hash_password`, in constant time."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
        actual = hashlib.scrypt(
            password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# A hash to check against when the user does not exist, so timing does not reveal names.
DUMMY_HASH: Final = hash_password(secrets.token_hex(8))


@dataclass(frozen=True)
class Session:
    """A signed-in agent's session, as its token states it."""

    agent: str
    epoch: int  # the account's session epoch when it was issued
    expires_at: int  # Unix seconds


class TokenError(Exception):
    """A token was missing, malformed, forged, expired or meant for something else."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenSigner:
    """Issues and checks the desk's JWTs with one secret key."""

    secret: str
    desk: str = "main"
    session_ttl_s: int = 3600
    ticket_ttl_s: int = 6 * 3600
    priority_secret: str = ""  # shared with host sites that vouch for a visitor's priority

    def _issue(self, subject: str, audience: str, ttl_s: int, extra: dict[str, Any]) -> str:
        now = int(time.time())
        claims = {
            "sub": subject,
            "aud": audience,
            "iss": ISSUER,
            "iat": now,
            "exp": now + ttl_s,
            "desk": self.desk,
            **extra,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def _check(self, token: str, audience: str, key: str = "") -> dict[str, Any]:
        if not token.isascii():
            # A JWT is ASCII; PyJWT would fail to encode a cookie's undecodable bytes.
            raise TokenError("invalid_token")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key or self.secret,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("expired_token") from None
        except jwt.PyJWTError:
            raise TokenError("invalid_token") from None
        if audience != PRIORITY_AUDIENCE and claims.get("desk") != self.desk:
            raise TokenError("invalid_token")
        return claims

    def agent_session(self, agent: str, epoch: int = 0) -> str:
        """A session token for a signed-in agent. ``epoch`` is the account's session epoch:
        raising it (sign-out, password or account change) revokes every older token."""
        return self._issue(agent, AGENT_AUDIENCE, self.session_ttl_s, {"ep": epoch})

    def check_agent_session(self, token: str) -> Session:
        """The session a token stands for (not yet checked against the account)."""
        claims = self._check(token, AGENT_AUDIENCE)
        epoch = claims.get("ep", 0)
        if not isinstance(epoch, int) or isinstance(epoch, bool):
            raise TokenError("invalid_token")
        return Session(str(claims["sub"]), epoch, int(claims["exp"]))

    def issue(self, visitor_id: str) -> str:
        """A ticket bound to one queue entry."""
        return self._issue(visitor_id, VISITOR_AUDIENCE, self.ticket_ttl_s, {})

    def verify(self, ticket: str) -> str:
        """The visitor id a ticket is bound to."""
        return str(self._check(ticket, VISITOR_AUDIENCE)["sub"])

    def priority(self, token: str) -> int:
        """The priority (0-9) a host site vouches for with a JWT signed by the priority secret.

        The host site signs ``{"sub": <its visitor id>, "priority": N, "aud":
        "humandesk:priority", "iss": "humandesk", "iat", "exp"}`` with HS256 and puts it in
        the embed tag as ``data-priority-token``.
        """
        if not self.priority_secret:
            raise TokenError("priority_tokens_disabled")
        claims = self._check(token, PRIORITY_AUDIENCE, self.priority_secret)
        value = claims.get("priority")
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 9:
            raise TokenError("invalid_token")
        return value
