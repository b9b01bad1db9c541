"""The aiohttp application: pages, the JSON API, the WebSocket upgrades and start-up."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import ipaddress
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web

from humandesk.queue.client import DeskQueue
from humandesk.queue.connection import RedisClient
from humandesk.queue.keys import NAME_RE
from humandesk.queue.stats import queue_stats
from humandesk.server.accounts import Account, Accounts, LoginThrottle, Revoked
from humandesk.server.audit import AuditAction, AuditLog, purge_and_record
from humandesk.server.auth import SESSION_COOKIE, Session, TokenError, TokenSigner
from humandesk.server.brand import LOGO_TYPES
from humandesk.server.config import Config
from humandesk.server.embedded_redis import RedisHealth
from humandesk.server.precall import Workers
from humandesk.server.queues import load_file
from humandesk.server.redis_connect import connect, drop_idle_connections
from humandesk.server.reports import PROMETHEUS_CONTENT_TYPE, calls_to_csv, prometheus_text
from humandesk.server.turn import ice_servers
from humandesk.signaling.codes import ProtocolError
from humandesk.signaling.desk import SignalingDesk, SignalingSettings
from humandesk.signaling.endpoints import agent_socket, visitor_socket
from humandesk.signaling.fields import MAX_SDP_CHARS
from humandesk.signaling.hub import Hub
from humandesk.signaling.jsonwire import holds_lone_surrogate, load_json
from humandesk.signaling.outage import RETRY_AFTER_S, UNAVAILABLE, Outage
from humandesk.web import STATIC_DIR, asset_versions, render
from humandesk.web.i18n import negotiate, widget_words

log = logging.getLogger(__name__)

CONFIG: Final = web.AppKey("config", Config)
REDIS: Final = web.AppKey[RedisClient]("redis")
QUEUE: Final = web.AppKey("queue", DeskQueue)
ACCOUNTS: Final = web.AppKey("accounts", Accounts)
SIGNER: Final = web.AppKey("signer", TokenSigner)
DESK: Final = web.AppKey("desk", SignalingDesk)
THROTTLE: Final = web.AppKey("throttle", LoginThrottle)
AUDIT: Final = web.AppKey("audit", AuditLog)
PRECALL: Final = web.AppKey("precall", Workers)
Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
PROXIES: Final = web.AppKey[Networks]("proxies")
#: Optional: how the embedded Redis is doing (set by the CLI when it supervises one; absent
#: with HUMANDESK_REDIS_URL). /readyz and /healthz consult it.
REDIS_HEALTH: Final = web.AppKey[Callable[[], RedisHealth]]("redis_health")
#: /readyz answers 503 when Redis does not answer PING within this many seconds.
READY_PING_TIMEOUT_S = 2.0

ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")
HOST_RE = re.compile(r"(?:[A-Za-z0-9_.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
MAX_LOGIN_BODY = 4096
MAX_PRECALL_BODY = 64 * 1024  # a complete SDP offer is a few KiB; refused with 413 above
#: Lifetime of the TURN credentials of a pre-call test: it lasts seconds.
PRECALL_TURN_TTL_S: Final = 120
LAST_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last moment ISO 8601 writes


def json_error(status: int, error: str, **extra: Any) -> web.Response:
    return web.json_response({"error": error, **extra}, status=status)


async def json_body(request: web.Request, limit: int) -> dict[str, Any] | web.Response:
    """The request's body as a strict I-JSON object, or the refusal: 413 when it is (or says
    it is) longer than ``limit`` -- a declared length is refused before anything is read, so
    a client that announces more than it sends is not waited for -- else 400."""
    if request.content_length is not None and request.content_length > limit:
        return json_error(413, "body_too_large")
    raw = bytearray()
    while chunk := await request.content.read(limit + 1 - len(raw)):
        raw += chunk  # a chunked body has no Content-Length to refuse it by
        if len(raw) > limit:
            return json_error(413, "body_too_large")
    try:
        # Strict UTF-8 first: json.loads(bytes) would let encoded surrogates through.
        body = load_json(raw.decode("utf-8"), max_depth=request.app[CONFIG].max_json_depth)
    except UnicodeDecodeError:
        return json_error(400, "bad_json", reason="the body is not UTF-8 text")
    except ProtocolError as exc:
        return json_error(400, exc.code, reason=exc.message)
    if not isinstance(body, dict):
        return json_error(400, "bad_json", reason="the body must be a JSON object")
    return body


def client_address(request: web.Request) -> str:
    """The client's address: the peer, or behind trusted reverse proxies the nearest address
    in X-Forwarded-For that is not one of them (anything further left can be forged).

    Always an IP address in its normal form, or the peer's own name: a hop that is not an
    address (whatever a client put there) stops the walk at the trusted hop before it, so
    no header text reaches the per-address counters' Redis keys."""
    proxies = request.app[PROXIES]
    address = request.remote or "unknown"

    def trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip in network for network in proxies)

    def as_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            return None

    peer = as_ip(address)
    if not proxies or peer is None or not trusted(peer):
        return address
    nearest = address
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        ip = as_ip(hop)
        if ip is None:
            return nearest
        if not trusted(ip):
            return str(ip)
        nearest = str(ip)
    return address


def own_origin(request: web.Request) -> str:
    """The desk's origin: ``HUMANDESK_PUBLIC_URL``'s, or the request's scheme and Host.

    A Host that is not a host name or address (with a port) is refused with 400
    ``bad_host``: the origin goes into pages, headers and the socket Origin check."""
    config = request.app[CONFIG]
    if config.public_url:
        parts = urlsplit(config.public_url)
        return f"{parts.scheme}://{parts.netloc}"
    if not HOST_RE.fullmatch(request.host):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "bad_host", "reason": "the Host header is not a host"}),
            content_type="application/json",
        )
    return f"{request.scheme}://{request.host}"


def own_socket_origin(request: web.Request) -> str:
    """The origin of the desk's own WebSockets: ``ws://host:port`` or ``wss://host``."""
    origin = own_origin(request)
    return "wss" + origin[5:] if origin.startswith("https") else "ws" + origin[4:]


def origin_allowed_for_socket(request: web.Request, *, embedders: bool) -> bool:
    """Cross-site WebSocket hijacking guard: only the desk's own pages may connect, and for
    the visitor socket (``embedders``) the panel framed by the sites that embed the widget.

    The agent socket never accepts an embedding site: its cookie is SameSite=Strict, but a
    page on a *same-site* embedding domain would still send it.
    """
    origin = request.headers.get("Origin")
    if not origin:
        return False
    if origin == own_origin(request):
        return True
    return embedders and origin in request.app[CONFIG].allowed_origins


def frame_ancestors(config: Config) -> str:
    return " ".join(config.allowed_origins) if config.allowed_origins else "*"


def page_headers(request: web.Request, frame_src: str) -> dict[str, str]:
    """The headers of every page: a CSP whose ``connect-src`` names the desk's own socket
    origin (not any ``ws:``/``wss:`` host, which a script injected into a page could use
    to send what it reads anywhere)."""
    csp = (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data: blob:; media-src 'self' blob: mediastream:; "
        f"connect-src 'self' {own_socket_origin(request)}; object-src 'none'; "
        f"base-uri 'none'; form-action 'self'; frame-ancestors {frame_src}"
    )
    return {
        "Content-Security-Policy": csp,
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Cache-Control": "no-store",
    }


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Errors under ``/api/`` answer JSON (``{"error": ...}``) like the handlers do, and a
    Redis outage answers 503 ``unavailable``. (``nosniff`` is set by :func:`nosniff`.)"""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if (
            request.path.startswith("/api/")
            and exc.status >= 400
            and exc.content_type != "application/json"
        ):
            return json_error(exc.status, exc.reason.lower().replace(" ", "_"))
        raise
    except UNAVAILABLE as exc:
        # Redis cannot be reached: an expected condition, logged once per outage.
        request.app[DESK].outage.failed(exc)
        response = json_error(
            503, "unavailable", reason="the desk cannot reach its database; try again soon"
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


async def nosniff(_request: web.Request, response: web.StreamResponse) -> None:
    """``X-Content-Type-Options: nosniff`` on every response the application sends: handler
    returns, raised HTTP errors (404, 405, ...), static files and 500s alike (all of them are
    prepared through this signal, unlike a middleware's view)."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


# Pages -------------------------------------------------------------------------------------


def brand_context(config: Config) -> dict[str, str]:
    """What the templates show of the brand: the name, and URLs of its stylesheet and logo
    (empty when not set), each with the brand's version so a change is seen at once."""
    brand = config.brand
    version = brand.version
    return {
        "desk_name": brand.name,
        "brand_css": f"/brand.css?v={version}" if brand.color else "",
        "brand_logo": f"/brand/logo?v={version}" if brand.logo else "",
    }


async def brand_css(request: web.Request) -> web.Response:
    return web.Response(
        text=request.app[CONFIG].brand.stylesheet(),
        content_type="text/css",
        headers={"Cache-Control": "public, max-age=300"},
    )


async def brand_logo(request: web.Request) -> web.Response:
    logo = request.app[CONFIG].brand.logo
    if logo is None:
        raise web.HTTPNotFound()
    headers = {"Cache-Control": "public, max-age=300"}
    if logo.suffix.lower() == ".svg":  # an SVG opened on its own runs no script
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return web.Response(
        body=logo.read_bytes(), content_type=LOGO_TYPES[logo.suffix.lower()], headers=headers
    )


#: The cookie that keeps an agent's or supervisor's choice of language (the console's chooser).
LANGUAGE_COOKIE: Final = "humandesk_lang"


def page_language(request: web.Request, chosen: str | None) -> str:
    """The language of a page: ``chosen`` (the embed's ``lang``, a staff member's cookie) if
    shipped, else the browser's ``Accept-Language``, else ``HUMANDESK_LANGUAGE``."""
    return negotiate(chosen, request.headers.get("Accept-Language"), request.app[CONFIG].language)


def staff_language(request: web.Request) -> str:
    return page_language(request, request.cookies.get(LANGUAGE_COOKIE))


async def index_page(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    html = render(
        "index.html",
        staff_language(request),
        desk_url=own_origin(request),
        **brand_context(config),
    )
    return web.Response(
        text=html, content_type="text/html", headers=page_headers(request, "'none'")
    )


async def visitor_page(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    queue = request.query.get("queue", "support")
    if not NAME_RE.match(queue):
        raise web.HTTPBadRequest(text="invalid queue name")
    host = request.query.get("host", "").rstrip("/")
    if host and not ORIGIN_RE.match(host):
        host = ""
    if host and config.allowed_origins and host not in config.allowed_origins:
        host = ""
    lang = page_language(request, request.query.get("lang"))
    html = render("visitor.html", lang, queue=queue, host_origin=host, **brand_context(config))
    return web.Response(
        text=html, content_type="text/html", headers=page_headers(request, frame_ancestors(config))
    )


async def agent_page(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    html = render("agent.html", staff_language(request), **brand_context(config))
    return web.Response(
        text=html, content_type="text/html", headers=page_headers(request, "'none'")
    )


async def wallboard_page(request: web.Request) -> web.Response:
    """The supervisors' wall screen: every queue and agent, live (data from the JSON API).

    Without a session it shows its sign-in form; to an agent who is not a supervisor it says
    so in their language, with the status 403."""
    config = request.app[CONFIG]
    forbidden = False
    if request.cookies.get(SESSION_COOKIE):
        try:
            account, _session = await current_agent(request)
        except web.HTTPUnauthorized:
            pass  # the page signs in
        else:
            forbidden = not account.supervisor
    html = render(
        "wallboard.html", staff_language(request), forbidden=forbidden, **brand_context(config)
    )
    return web.Response(
        text=html,
        status=403 if forbidden else 200,
        content_type="text/html",
        headers=page_headers(request, "'none'"),
    )


#: The launcher's colour constants in widget.js, by the palette entry that replaces each.
WIDGET_COLORS = {"--accent": "ACCENT", "--accent-hover": "ACCENT_HOVER", "--on-accent": "ON_ACCENT"}


async def widget_js(request: web.Request) -> web.Response:
    """The embed script, in the brand's colours (the launcher sits on the shop's page)."""
    config = request.app[CONFIG]
    palette = config.brand.palette
    text = (STATIC_DIR / "widget.js").read_text()
    words = json.dumps(widget_words(), ensure_ascii=False, separators=(",", ":"))
    text = text.replace("const WORDS = {};", f"const WORDS = {words};", 1)
    text = text.replace(
        'const DESK_LANGUAGE = "en";', f'const DESK_LANGUAGE = "{config.language}";', 1
    )
    if palette:
        for name, const in WIDGET_COLORS.items():
            text = re.sub(
                rf'const {const} = "#[0-9a-f]{{6}}";', f'const {const} = "{palette[name]}";', text
            )
    return web.Response(
        text=text,
        content_type="text/javascript",
        headers={"Cache-Control": "public, max-age=300"},
    )


async def static_file(request: web.Request) -> web.FileResponse:
    """A file of web/static, looked up by its path among the files there: a path from the URL
    never reaches the file system (where one longer than it takes was a 500).

    Under the URL a page names it by (``?v=`` its content hash) it is cached for good; under any
    other, such as a module's import of ``./state.js``, the browser revalidates it every time
    (``no-cache``; unchanged, its ETag answers 304), so the modules a page loads are always
    the current ones."""
    name = request.match_info["name"]
    versions = asset_versions()
    if name not in versions:
        raise web.HTTPNotFound()
    pinned = request.query.get("v") == versions[name]
    cache = "public, max-age=31536000, immutable" if pinned else "no-cache"
    return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": cache})


# Agent sessions ----------------------------------------------------------------------------


async def current_agent(request: web.Request) -> tuple[Account, Session]:
    """The signed-in agent and their session, or an HTTP 401 with a JSON reason."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise _unauthorized("missing_token")
    try:
        session = request.app[SIGNER].check_agent_session(token)
    except TokenError as exc:
        raise _unauthorized(exc.reason) from None
    account = await request.app[ACCOUNTS].get(session.agent)
    if account is None:
        raise _unauthorized("unknown_agent")
    if account.disabled:
        raise _unauthorized("account_disabled")
    if session.epoch != account.epoch:
        raise _unauthorized("revoked_token")
    return account, session


async def current_supervisor(request: web.Request) -> Account:
    """The signed-in supervisor, or 401 (no session) / 403 (an agent)."""
    account, _session = await current_agent(request)
    if not account.supervisor:
        raise web.HTTPForbidden(
            text=json.dumps({"error": "forbidden", "reason": "supervisors_only"}),
            content_type="application/json",
        )
    return account


def _unauthorized(reason: str) -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(
        text=json.dumps({"error": "unauthorized", "reason": reason}),
        content_type="application/json",
    )


def _same_origin_post(request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin is not None and origin != own_origin(request):
        raise web.HTTPForbidden(
            text=json.dumps({"error": "origin_not_allowed"}), content_type="application/json"
        )


async def login(request: web.Request) -> web.Response:
    _same_origin_post(request)
    body = await json_body(request, MAX_LOGIN_BODY)
    if isinstance(body, web.Response):
        return body
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return json_error(400, "bad_request", reason="username and password are required")
    if holds_lone_surrogate(username) or holds_lone_surrogate(password):
        return json_error(
            400, "bad_request", reason="username and password must be valid Unicode text"
        )
    name, address = username.strip().lower(), client_address(request)
    throttle = request.app[THROTTLE]
    wait = await throttle.attempt(name, address)
    if wait:
        response = json_error(
            429, "too_many_attempts", reason="too many failed logins; try again later"
        )
        response.headers["Retry-After"] = str(wait)
        return response
    account = await request.app[ACCOUNTS].authenticate(name, password)
    if account is None:
        tried = name if NAME_RE.match(name) else "(not an account name)"
        await request.app[AUDIT].record(AuditAction.LOGIN_FAILED, tried, address=address)
        return json_error(401, "invalid_credentials")
    await throttle.succeeded(name, address)
    await request.app[AUDIT].record(AuditAction.LOGIN, account.name, address=address)
    response = web.json_response({"agent": account.public()})
    _set_session_cookie(request, response, account)
    return response


def _set_session_cookie(request: web.Request, response: web.Response, account: Account) -> None:
    signer = request.app[SIGNER]
    response.set_cookie(
        SESSION_COOKIE,
        signer.agent_session(account.name, account.epoch),
        max_age=signer.session_ttl_s,
        httponly=True,
        samesite="Strict",
        secure=own_origin(request).startswith("https://"),
        path="/",
    )


async def renew_session(request: web.Request) -> web.Response:
    """Extends the session of an open console (sliding): a fresh cookie, and every socket of
    this session (on any server process) lives as long."""
    _same_origin_post(request)
    account, session = await current_agent(request)
    ttl_s = request.app[SIGNER].session_ttl_s
    expires_at = int(time.time()) + ttl_s
    response = web.json_response(
        {"agent": account.public(), "expires_at": expires_at, "ttl_s": ttl_s}
    )
    _set_session_cookie(request, response, account)
    await request.app[DESK].hub.publish(
        request.app[QUEUE].keys.agent_channel(account.name),
        {"type": "_session", "epoch": session.epoch, "expires_at": expires_at},
    )
    return response


async def logout(request: web.Request) -> web.Response:
    """Signs the agent out everywhere: every session of theirs is revoked, every console of
    theirs closed (4403 ``signed_out``), and they go Offline."""
    _same_origin_post(request)
    try:
        account, _session = await current_agent(request)
    except web.HTTPUnauthorized:
        account = None  # already signed out: just forget the cookie
    if account is not None:
        await request.app[ACCOUNTS].revoke(account, Revoked.SIGNED_OUT)
        await request.app[AUDIT].record(
            AuditAction.LOGOUT, account.name, address=client_address(request)
        )
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    account, session = await current_agent(request)
    return web.json_response({"agent": account.public(), "expires_at": session.expires_at})


async def queue_status(request: web.Request) -> web.Response:
    """What a visitor may know before joining: open or closed, anyone there, the wait."""
    name = request.match_info["queue"]
    queue = request.app[QUEUE]
    if name not in await queue.queue_names(refresh=True):
        return json_error(404, "unknown_queue")
    return web.json_response((await queue.availability(name)).public())


def _interval(request: web.Request) -> tuple[int, int, float | None]:
    """``since``/``until`` (Unix ms or ISO 8601; default: today in UTC) and ``threshold``
    (None: each queue's own service-level threshold)."""
    now = dt.datetime.now(dt.UTC)

    def moment(name: str, default: dt.datetime) -> int:
        raw = request.query.get(name)
        if raw is None:
            return int(default.timestamp() * 1000)
        bad = _bad_request(f"'{name}' must be Unix milliseconds or ISO 8601, years 1970-9999")
        if raw.isascii() and raw.isdigit():  # not str.isdigit alone: it takes "²" and "٣"
            ms = int(raw) if len(raw) <= 15 else LAST_MS + 1
        else:
            try:
                parsed = dt.datetime.fromisoformat(raw)
            except ValueError:
                raise bad from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            ms = int(parsed.timestamp() * 1000)
        if not 0 <= ms <= LAST_MS:  # the events' stream ids take nothing else
            raise bad
        return ms

    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    since, until = moment("since", midnight), moment("until", now)
    raw = request.query.get("threshold")
    try:
        threshold = None if raw is None else float(raw)
    except ValueError:
        raise _bad_request("'threshold' must be a number of seconds") from None
    if since > until or (threshold is not None and not 0 < threshold <= 3600):
        raise _bad_request("need since <= until and 0 < threshold <= 3600")
    return since, until, threshold


def _bad_request(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=json.dumps({"error": "bad_request", "reason": reason}),
        content_type="application/json",
    )


async def stats(request: web.Request) -> web.Response:
    """Live and interval statistics per queue (supervisors)."""
    await current_supervisor(request)
    since, until, threshold = _interval(request)
    queue = request.app[QUEUE]
    per_queue = await queue_stats(queue, since, until, threshold, await queue.clock_ms())
    return web.json_response(
        {
            "since_ms": since,
            "until_ms": until,
            "threshold_s": threshold,
            "queues": {name: s.public() for name, s in per_queue.items()},
        }
    )


async def agents(request: web.Request) -> web.Response:
    """Every account with its live state (supervisors; read-only).

    ``since_ms`` is when the current state began: idle since for Available, the offer for
    Ringing, the call's start for In call, the change for Break and Offline (None only for
    an account that never signed in); ``until_ms`` is the end of a wrap-up. ``reason`` says
    why an agent is on Break or Offline, when the desk put them there, in English;
    ``reason_code`` says it for a page to translate (with ``missed``, the offers missed in a
    row, for ``missed_offers``)."""
    await current_supervisor(request)
    queue = request.app[QUEUE]
    accounts = await request.app[ACCOUNTS].all()
    live = await queue.agents()
    rows = []
    for account in accounts:
        state = live.get(account.name, {})
        status = str(state.get("state", "offline"))
        since: int | None = None
        until: int | None = None
        if status == "available" and state.get("idle_since") is not None:
            since = int(state["idle_since"])
        elif status == "in_call" and state.get("call"):
            call = await queue.call(str(state["call"]))
            if call and call.get("started") is not None:
                since = int(call["started"])
        elif status == "offered" and state.get("offer"):
            offer = await queue.offer(str(state["offer"]))
            if offer and offer.get("created") is not None:
                since = int(offer["created"])
        elif status == "wrap_up" and state.get("wrapup_until") is not None:
            until = int(state["wrapup_until"])
        elif status in ("break", "offline") and state.get("state_since") is not None:
            since = int(state["state_since"])
        desk_put = status in ("break", "offline")
        reason = state.get("reason") if desk_put else None
        code = state.get("reason_code") if desk_put else None
        missed = state.get("missed") if code == "missed_offers" else None
        rows.append(
            {
                "name": account.name,
                "display_name": account.display_name,
                "role": account.role,
                "queues": account.queues,
                "state": status,
                "since_ms": since,
                "until_ms": until,
                "reason": reason if isinstance(reason, str) and reason else None,
                "reason_code": code if isinstance(code, str) and code else None,
                "missed": int(missed) if isinstance(missed, int | float) else None,
            }
        )
    return web.json_response({"now_ms": await queue.clock_ms(), "agents": rows})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text: the live state and today's numbers of every queue.

    For a scraper with ``Authorization: Bearer <HUMANDESK_METRICS_TOKEN>``, or a signed-in
    supervisor."""
    token = request.app[CONFIG].metrics_token
    given = request.headers.get("Authorization", "")
    if given.startswith("Bearer ") and token:
        # surrogateescape: the header's bytes as sent, UTF-8 or not (aiohttp decodes them so).
        offered = given[7:].strip().encode("utf-8", "surrogateescape")
        if not secrets.compare_digest(offered, token.encode()):
            raise _unauthorized("invalid_token")
    else:
        await current_supervisor(request)
    queue = request.app[QUEUE]
    now = await queue.clock_ms()
    midnight = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    per_queue = await queue_stats(queue, int(midnight.timestamp() * 1000), now, None, now)
    text = prometheus_text(per_queue)
    if queue.replica_wait_ms:  # cluster mode: changes no replica confirmed (docs/cluster.md)
        text += (
            "# HELP humandesk_redis_unreplicated_total Queue changes no replica confirmed in "
            "HUMANDESK_REDIS_WAIT_MS (this process).\n"
            "# TYPE humandesk_redis_unreplicated_total counter\n"
            f"humandesk_redis_unreplicated_total {queue.unreplicated}\n"
        )
    return web.Response(
        text=text,
        headers={"Content-Type": PROMETHEUS_CONTENT_TYPE, "Cache-Control": "no-store"},
    )


async def calls_csv(request: web.Request) -> web.Response:
    """Call records of the interval as CSV (supervisors)."""
    account = await current_supervisor(request)
    since, until, _threshold = _interval(request)
    records = await request.app[QUEUE].call_records(since, until)
    await _audit_export(request, account.name, "calls.csv", since, until, len(records))
    return web.Response(
        text=calls_to_csv(records),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="humandesk-calls.csv"'},
    )


async def _audit_export(
    request: web.Request, actor: str, what: str, since: int, until: int, rows: int
) -> None:
    """Records an export in the audit log before any of it is sent."""

    def iso(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")

    await request.app[AUDIT].record(
        AuditAction.EXPORT,
        actor,
        target=what,
        address=client_address(request),
        since=iso(since),
        until=iso(until),
        rows=str(rows),
    )


# The pre-call test ---------------------------------------------------------------------------


def _visitor_origin(request: web.Request) -> None:
    """The pre-call test is the visitor panel's: the same Origin rule as the visitor socket."""
    if not origin_allowed_for_socket(request, embedders=True):
        raise web.HTTPForbidden(
            text=json.dumps({"error": "origin_not_allowed"}), content_type="application/json"
        )


def _precall_ice(request: web.Request, who: str) -> list[dict[str, Any]]:
    config = request.app[CONFIG]
    return ice_servers(
        list(config.stun_urls),
        list(config.turn_urls),
        config.turn_secret,
        f"{who}-{secrets.token_urlsafe(9)}",
        PRECALL_TURN_TTL_S,
    )


async def precall_ice(request: web.Request) -> web.Response:
    """The ICE servers and policy of a call, with TURN credentials of their own that last
    two minutes: the browser gathers its candidates with them before it offers."""
    _visitor_origin(request)
    return web.json_response(
        {
            "ice_servers": _precall_ice(request, "p"),
            "ice_transport_policy": request.app[CONFIG].ice_policy,
        },
        headers={"Cache-Control": "no-store"},
    )


async def precall_offer(request: web.Request) -> web.Response:
    """A visitor's complete SDP offer (every candidate in it) for an echo peer: answered by a
    pre-call worker with a complete SDP answer, or refused (see docs/protocol.md)."""
    _visitor_origin(request)
    config = request.app[CONFIG]
    body = await json_body(request, MAX_PRECALL_BODY)
    if isinstance(body, web.Response):
        return body
    sdp = body.get("sdp")
    if body.get("type") != "offer" or not isinstance(sdp, str) or not sdp.startswith("v=0"):
        return json_error(400, "bad_request", reason="need type offer and an SDP (sdp)")
    if holds_lone_surrogate(sdp):
        return json_error(400, "bad_request", reason="the SDP must be valid Unicode text")
    if len(sdp) > MAX_SDP_CHARS:
        return json_error(413, "too_large", reason=f"the SDP is over {MAX_SDP_CHARS} characters")
    refusal = await request.app[DESK].limiter.admit_precall(client_address(request))
    if refusal is not None:
        response = json_error(
            429,
            "rate_limited",
            limit=refusal.limit,
            retry_after_s=refusal.retry_after_s,
            reason="too many pre-call tests from this address",
        )
        response.headers["Retry-After"] = str(refusal.retry_after_s)
        return response
    reply = await request.app[PRECALL].answer(
        {
            "type": "offer",
            "sdp": sdp,
            "ice_servers": _precall_ice(request, "pw"),
            "ice_transport_policy": config.ice_policy,
        }
    )
    response = web.json_response(reply.body, status=reply.status)
    if reply.status == 503:
        response.headers["Retry-After"] = str(reply.body.get("retry_after_s", RETRY_AFTER_S))
    return response


# WebSockets --------------------------------------------------------------------------------


def _check_upgrade(request: web.Request, *, embedders: bool) -> None:
    if request.app[DESK].draining:
        raise web.HTTPServiceUnavailable(
            text=json.dumps({"error": "draining"}),
            content_type="application/json",
            headers={"Retry-After": "1"},
        )
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "websocket_required"}), content_type="application/json"
        )
    if not origin_allowed_for_socket(request, embedders=embedders):
        raise web.HTTPForbidden(
            text=json.dumps({"error": "origin_not_allowed"}), content_type="application/json"
        )


async def visitor_ws(request: web.Request) -> web.WebSocketResponse:
    _check_upgrade(request, embedders=True)
    return await visitor_socket(request, request.app[DESK], client_address(request))


async def agent_ws(request: web.Request) -> web.WebSocketResponse:
    _check_upgrade(request, embedders=False)
    account, session = await current_agent(request)
    return await agent_socket(
        request,
        request.app[DESK],
        account.info(),
        epoch=session.epoch,
        expires_at=session.expires_at,
    )


# Health ------------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    """Alive, unless the embedded Redis could not be brought back (restart the process)."""
    source = request.app.get(REDIS_HEALTH)
    health = source() if source is not None else None
    if health is not None and not health.alive:
        return web.json_response(
            {"status": "failed", "problems": ["redis_failed"], "reason": health.reason},
            status=503,
        )
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    if request.app[DESK].draining:
        return web.json_response({"status": "draining", "problems": ["draining"]}, status=503)
    problems = []
    extra: dict[str, str] = {}
    source = request.app.get(REDIS_HEALTH)
    health = source() if source is not None else None
    if health is not None and not health.ready:
        problems.append("redis_unreachable")  # known down: answer without waiting for it
        extra["reason"] = health.reason
    else:
        try:
            await asyncio.wait_for(request.app[REDIS].ping(), READY_PING_TIMEOUT_S)
        except Exception:
            problems.append("redis_unreachable")
        else:
            request.app[DESK].outage.recovered()
    if not request.app[DESK].hub.ready:
        problems.append("subscriptions_down")
    if problems:
        return web.json_response({"status": "not_ready", "problems": problems, **extra}, status=503)
    return web.json_response({"status": "ready"})


# Assembly ----------------------------------------------------------------------------------


def create_app(config: Config) -> web.Application:
    """The desk application. ``config.redis_url`` must point at a running Redis."""
    if not config.redis_url:
        raise ValueError("create_app needs a Redis URL (the CLI starts an embedded one)")
    config = config.with_secret()
    app = web.Application(middlewares=[security_headers], client_max_size=64 * 1024)
    app[CONFIG] = config
    app.router.add_get("/", index_page)
    app.router.add_get("/visitor", visitor_page)
    app.router.add_get("/agent", agent_page)
    app.router.add_get("/wallboard", wallboard_page)
    app.router.add_get("/widget.js", widget_js)
    app.router.add_get("/brand.css", brand_css)
    app.router.add_get("/brand/logo", brand_logo)
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_post("/api/session", renew_session)
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/queues/{queue}", queue_status)
    app.router.add_post("/api/precall/ice", precall_ice)
    app.router.add_post("/api/precall", precall_offer)
    app.router.add_get("/api/stats", stats)
    app.router.add_get("/api/agents", agents)
    app.router.add_get("/api/calls.csv", calls_csv)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/ws/visitor", visitor_ws)
    app.router.add_get("/ws/agent", agent_ws)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/static/{name:.+}", static_file)
    app.on_response_prepare.append(nosniff)
    app.cleanup_ctx.append(_desk_context)
    app.on_shutdown.append(_drain)
    return app


async def _drain(app: web.Application) -> None:
    """On SIGTERM, once the listening sockets are closed: see SignalingDesk.drain."""
    left = await app[DESK].drain(app[CONFIG].drain_timeout_s)
    if left:
        log.warning("%d sockets still open after the drain timeout; closing the process", left)


async def _desk_context(app: web.Application) -> Any:
    config = app[CONFIG]
    assert config.redis_url is not None
    redis = connect(config.redis_url, config.redis_mode)
    queue = DeskQueue(redis, config.desk, config.queue, replica_wait_ms=config.redis_wait_ms)
    for name in config.queues:
        await queue.add_queue(name)
    if config.config_file is not None:
        for name, rules in load_file(config.config_file).items():
            await queue.set_queue_rules(name, rules)
    signer = TokenSigner(
        config.secret_key,
        config.desk,
        config.session_ttl_s,
        priority_secret=config.priority_secret,
    )

    def ice(user_id: str) -> list[dict[str, Any]]:
        """Minted afresh for every welcome, call and ICE restart (TURN REST credentials)."""
        return ice_servers(
            list(config.stun_urls),
            list(config.turn_urls),
            config.turn_secret,
            user_id,
            config.turn_ttl_s,
        )

    outage = Outage(on_start=lambda: drop_idle_connections(redis))
    audit = AuditLog(redis, queue.keys, max_entries=config.audit_max_entries)
    desk = SignalingDesk(
        queue,
        Hub(redis, outage, slot_key=queue.keys.prefix),
        signer,
        ice,
        SignalingSettings(
            heartbeat_s=config.heartbeat_s,
            reaper_interval_s=config.reaper_interval_s,
            ice_transport_policy=config.ice_policy,
            limits=config.limits,
            idle_signout_s=config.idle_signout_s,
            housekeeping_interval_s=config.purge_interval_s,
            max_json_depth=config.max_json_depth,
        ),
        housekeeping=functools.partial(purge_and_record, queue, audit, config.retention()),
    )
    app[REDIS] = redis
    app[QUEUE] = queue
    app[ACCOUNTS] = Accounts(redis, queue)
    app[THROTTLE] = LoginThrottle(
        redis,
        queue.keys,
        per_account=config.limits.logins_per_account,
        per_address=config.limits.logins_per_address,
        window_s=config.limits.login_window_s,
    )
    app[AUDIT] = audit
    app[PROXIES] = tuple(ipaddress.ip_network(p, strict=False) for p in config.trusted_proxies)
    app[SIGNER] = signer
    app[DESK] = desk
    app[PRECALL] = Workers(config.precall_urls or ())
    await desk.start()
    yield
    await desk.stop()
    await app[PRECALL].close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(redis.aclose(), 3)
