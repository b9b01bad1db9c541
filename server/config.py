"""The desk's settings, read from ``HUMANDESK_*`` environment variables and CLI options."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from humandesk.queue.client import QueueConfig
from humandesk.queue.limits import AbuseLimits
from humandesk.queue.privacy import DEFAULT_AUDIT_RETENTION_DAYS, DEFAULT_RETENTION_DAYS, Retention
from humandesk.server.audit import DEFAULT_MAX_ENTRIES
from humandesk.server.brand import Brand, load_brand
from humandesk.signaling.codes import MAX_JSON_DEPTH
from humandesk.signaling.limits import PrecallLimits

# Abuse limits: environment variable -> (AbuseLimits field, type).
LIMIT_ENV: dict[str, tuple[str, type]] = {
    "HUMANDESK_JOINS_PER_MINUTE": ("joins_per_minute", int),
    "HUMANDESK_WAITING_PER_ADDRESS": ("waiting_per_address", int),
    "HUMANDESK_CALLBACKS_PER_HOUR": ("callbacks_per_hour", int),
    "HUMANDESK_MAX_OPEN_CALLBACKS": ("open_callbacks", int),
    "HUMANDESK_CHAT_MAX_MESSAGES": ("chat_messages", int),
    "HUMANDESK_MESSAGES_PER_SECOND": ("messages_per_second", float),
    "HUMANDESK_MESSAGE_BURST": ("message_burst", int),
    "HUMANDESK_LOGIN_LIMIT_ACCOUNT": ("logins_per_account", int),
    "HUMANDESK_LOGIN_LIMIT_ADDRESS": ("logins_per_address", int),
    "HUMANDESK_PRECALLS_PER_MINUTE": ("precalls_per_minute", int),
}

# Pre-call worker limits: environment variable -> (PrecallLimits field, type, least value).
PRECALL_ENV: dict[str, tuple[str, type, float]] = {
    "HUMANDESK_PRECALL_PEERS": ("max_peers", int, 1),
    "HUMANDESK_PRECALL_QUEUE": ("queue", int, 0),
    "HUMANDESK_PRECALL_WAIT": ("wait_s", float, 0),
    "HUMANDESK_PRECALL_SECONDS": ("max_seconds", float, 1),
}

ENV_HELP: dict[str, str] = {
    "HUMANDESK_HOST": "address to listen on (default 127.0.0.1)",
    "HUMANDESK_PORT": "port to listen on (default 8080)",
    "HUMANDESK_REDIS_URL": "Redis 6.2+ or Valkey URL; unset = a private embedded redis-server",
    "HUMANDESK_DATA_DIR": "folder of the embedded Redis and the generated secret key "
    "(default ~/.local/share/humandesk)",
    "HUMANDESK_REDIS_RESTARTS": "failed restarts in a row after which the embedded Redis is "
    "given up and /healthz fails (default 5; 0: never restart it)",
    "HUMANDESK_DESK": "desk name, the Redis hash tag of all keys (default main)",
    "HUMANDESK_SECRET_KEY": "key that signs agent sessions and visitor tickets; every "
    "instance of a desk needs the same one (default: generated once in the data folder)",
    "HUMANDESK_PUBLIC_URL": "the desk's public origin, e.g. https://desk.example (default: "
    "from each request's Host)",
    "HUMANDESK_ALLOWED_ORIGINS": "comma-separated origins of sites that may embed the widget "
    "(default: any)",
    "HUMANDESK_QUEUES": "comma-separated queues to create at start (default support)",
    "HUMANDESK_STUN_URLS": "comma-separated STUN URLs given to browsers (default none)",
    "HUMANDESK_TURN_URLS": "comma-separated TURN URLs given to browsers (default none)",
    "HUMANDESK_TURN_SECRET": "coturn static-auth-secret for time-limited TURN credentials",
    "HUMANDESK_ICE_POLICY": "all (default) or relay: send call media only through TURN, "
    "which hides visitors' and agents' IP addresses from each other",
    "HUMANDESK_OFFER_TIMEOUT": "seconds an agent has to accept an offer (default 20)",
    "HUMANDESK_SESSION_TTL": "seconds an agent's sign-in lasts without renewal; an open "
    "console renews it (sliding) (default 3600)",
    "HUMANDESK_IDLE_SIGNOUT": "seconds without a key press or click after which a console "
    "that is not in a call, an offer or a wrap-up signs out (default 0: never)",
    "HUMANDESK_DRAIN_TIMEOUT": "seconds a stopping server (SIGTERM) waits for its sockets, "
    "closed with 1012 to reconnect elsewhere, before it exits (default 25)",
    "HUMANDESK_BRAND_NAME": "the desk's name on its pages (default humandesk; or [brand] name "
    "in the TOML file)",
    "HUMANDESK_BRAND_COLOR": "the accent colour, #rrggbb; text on it is white or near-black, "
    "whichever reads (or [brand] color)",
    "HUMANDESK_BRAND_LOGO": "an image file (png, jpg, webp, svg; at most 256 KiB) shown "
    "beside the name (or [brand] logo)",
    "HUMANDESK_TURN_TTL": "lifetime in seconds of the TURN credentials minted for each call "
    "and each ICE restart (default 3600)",
    "HUMANDESK_METRICS_TOKEN": "bearer token that /metrics requires (default unset: only a "
    "signed-in supervisor may read it)",
    "HUMANDESK_JOINS_PER_MINUTE": "joins per client address per minute (default 20; 0: no limit)",
    "HUMANDESK_WAITING_PER_ADDRESS": "visitors in line at once per client address "
    "(default 10; 0: no limit)",
    "HUMANDESK_CALLBACKS_PER_HOUR": "callback requests per client address per hour (default 5)",
    "HUMANDESK_MAX_OPEN_CALLBACKS": "open callback requests the desk holds (default 1000)",
    "HUMANDESK_CHAT_MAX_MESSAGES": "lines of chat one call holds, both parties together "
    "(default 200); more are refused with chat_full",
    "HUMANDESK_MESSAGES_PER_SECOND": "messages one socket may send per second, sustained "
    "(default 20)",
    "HUMANDESK_MESSAGE_BURST": "messages one socket may send at once (default 60)",
    "HUMANDESK_LOGIN_LIMIT_ACCOUNT": "sign-in attempts per account and address per 15 "
    "minutes (default 10)",
    "HUMANDESK_LOGIN_LIMIT_ADDRESS": "sign-in attempts per address per 15 minutes (default 100)",
    "HUMANDESK_PRECALL_URL": "comma-separated URLs of pre-call workers run separately "
    "(`humandesk precall-worker`); unset: `serve` and `demo` start one worker as a child "
    "process; off: no pre-call test (the panel says it could not run)",
    "HUMANDESK_PRECALLS_PER_MINUTE": "pre-call tests per client address per minute "
    "(default 6; 0: no limit)",
    "HUMANDESK_PRECALL_PEERS": "pre-call tests one worker runs at once (default 2; each "
    "takes about 40-45 % of a core)",
    "HUMANDESK_PRECALL_QUEUE": "pre-call tests that may wait for a worker's slot; more are "
    "refused with precall_busy (default 8)",
    "HUMANDESK_PRECALL_WAIT": "seconds a pre-call test waits for a slot before it is "
    "refused with precall_busy (default 10)",
    "HUMANDESK_PRECALL_SECONDS": "seconds after which a worker closes a pre-call test's peer "
    "(default 15)",
    "HUMANDESK_CONFIG": "TOML file of queues and their rules, applied at start "
    "(see `humandesk queue --help`)",
    "HUMANDESK_RESUME_WINDOW": "seconds a visitor keeps their place after a reload or a "
    "dropped connection (default 60)",
    "HUMANDESK_PRIORITY_SECRET": "key host sites use to sign a visitor's priority "
    "(data-priority-token); unset: such tokens are refused",
    "HUMANDESK_EVENT_LOOP": "uvloop (default, where installed) or asyncio",
    "HUMANDESK_MAX_JSON_DEPTH": "deepest nesting of JSON accepted in a WebSocket frame or a "
    "login body (default 32, at least 4); deeper is refused with too_deep",
    "HUMANDESK_TRUSTED_PROXIES": "comma-separated addresses or networks of reverse proxies "
    "whose X-Forwarded-For names the client (default none: the peer address is the client)",
    "HUMANDESK_RETENTION_DAYS": "days call records, callback requests (open ones too) and "
    "event-log entries are kept, then deleted (default 90; 0 = for ever)",
    "HUMANDESK_AUDIT_RETENTION_DAYS": "days audit-log entries are kept (default 365; 0 = for ever)",
    "HUMANDESK_AUDIT_MAX_ENTRIES": "most entries the audit log keeps; the oldest go first "
    "(default 100000)",
}


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _number(env: Mapping[str, str], name: str, kind: type, *, minimum: float) -> Any:
    try:
        value = kind(env[name])
    except ValueError:
        raise ValueError(f"{name} must be a number, not {env[name]!r}") from None
    if not minimum <= value < 1e12:
        raise ValueError(f"{name} must be at least {minimum}")
    return value


def default_data_dir() -> Path:
    if os.environ.get("HUMANDESK_DATA_DIR"):
        return Path(os.environ["HUMANDESK_DATA_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "humandesk"


@dataclass(frozen=True)
class Config:
    """Everything one server process needs to know."""

    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str | None = None
    data_dir: Path = field(default_factory=default_data_dir)
    desk: str = "main"
    secret_key: str = ""
    public_url: str | None = None
    allowed_origins: tuple[str, ...] = ()
    queues: tuple[str, ...] = ("support",)
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    ice_policy: str = "all"
    session_ttl_s: int = 3600
    idle_signout_s: int = 0
    drain_timeout_s: int = 25
    turn_ttl_s: int = 3600
    metrics_token: str = ""
    limits: AbuseLimits = field(default_factory=AbuseLimits)
    queue: QueueConfig = field(default_factory=QueueConfig)
    config_file: Path | None = None
    priority_secret: str = ""
    trusted_proxies: tuple[str, ...] = ()  # addresses or networks (CIDR)
    redis_restarts: int = 5  # failed restarts of the embedded Redis in a row, then give up
    heartbeat_s: float = 5.0
    reaper_interval_s: float = 0.5
    brand: Brand = field(default_factory=Brand)  # name, accent colour, logo (brand.py)
    retention_days: int = DEFAULT_RETENTION_DAYS
    audit_retention_days: int = DEFAULT_AUDIT_RETENTION_DAYS
    audit_max_entries: int = DEFAULT_MAX_ENTRIES
    purge_interval_s: float = 3600.0  # how often the retention purge runs
    max_json_depth: int = MAX_JSON_DEPTH
    #: Pre-call workers' URLs; None: the CLI starts one as a child process; () none at all.
    precall_urls: tuple[str, ...] | None = None
    precall: PrecallLimits = field(default_factory=PrecallLimits)

    def retention(self) -> Retention:
        return Retention(days=self.retention_days, audit_days=self.audit_retention_days)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Settings from the environment; keyword arguments (CLI options) win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if env.get("HUMANDESK_HOST"):
            values["host"] = env["HUMANDESK_HOST"]
        if env.get("HUMANDESK_PORT"):
            values["port"] = int(env["HUMANDESK_PORT"])
        if env.get("HUMANDESK_REDIS_URL"):
            values["redis_url"] = env["HUMANDESK_REDIS_URL"]
        if env.get("HUMANDESK_DATA_DIR"):
            values["data_dir"] = Path(env["HUMANDESK_DATA_DIR"])
        if env.get("HUMANDESK_REDIS_RESTARTS"):
            restarts = env["HUMANDESK_REDIS_RESTARTS"].strip()
            if not (restarts.isascii() and restarts.isdigit()):
                raise ValueError("HUMANDESK_REDIS_RESTARTS must be a whole number, 0 or more")
            values["redis_restarts"] = int(restarts)
        if env.get("HUMANDESK_DESK"):
            values["desk"] = env["HUMANDESK_DESK"]
        if env.get("HUMANDESK_SECRET_KEY"):
            values["secret_key"] = env["HUMANDESK_SECRET_KEY"]
        if env.get("HUMANDESK_PUBLIC_URL"):
            values["public_url"] = env["HUMANDESK_PUBLIC_URL"].rstrip("/")
        if env.get("HUMANDESK_ALLOWED_ORIGINS"):
            values["allowed_origins"] = tuple(
                o.rstrip("/") for o in _split(env["HUMANDESK_ALLOWED_ORIGINS"])
            )
        if env.get("HUMANDESK_QUEUES"):
            values["queues"] = tuple(_split(env["HUMANDESK_QUEUES"]))
        if env.get("HUMANDESK_STUN_URLS"):
            values["stun_urls"] = tuple(_split(env["HUMANDESK_STUN_URLS"]))
        if env.get("HUMANDESK_TURN_URLS"):
            values["turn_urls"] = tuple(_split(env["HUMANDESK_TURN_URLS"]))
        if env.get("HUMANDESK_TURN_SECRET"):
            values["turn_secret"] = env["HUMANDESK_TURN_SECRET"]
        if env.get("HUMANDESK_ICE_POLICY"):
            policy = env["HUMANDESK_ICE_POLICY"].strip().lower()
            if policy not in ("all", "relay"):
                raise ValueError("HUMANDESK_ICE_POLICY must be 'all' or 'relay'")
            values["ice_policy"] = policy
        for name, key in (
            ("HUMANDESK_SESSION_TTL", "session_ttl_s"),
            ("HUMANDESK_IDLE_SIGNOUT", "idle_signout_s"),
            ("HUMANDESK_TURN_TTL", "turn_ttl_s"),
            ("HUMANDESK_DRAIN_TIMEOUT", "drain_timeout_s"),
        ):
            if env.get(name):
                zero_ok = key in ("idle_signout_s", "drain_timeout_s")
                values[key] = _number(env, name, int, minimum=0 if zero_ok else 1)
        if env.get("HUMANDESK_METRICS_TOKEN"):
            values["metrics_token"] = env["HUMANDESK_METRICS_TOKEN"]
        limits = {
            key: _number(env, name, kind, minimum=0)
            for name, (key, kind) in LIMIT_ENV.items()
            if env.get(name)
        }
        if limits:
            values["limits"] = replace(AbuseLimits(), **limits)
        queue = QueueConfig()
        if env.get("HUMANDESK_OFFER_TIMEOUT"):
            queue = replace(
                queue, offer_timeout_ms=int(float(env["HUMANDESK_OFFER_TIMEOUT"]) * 1000)
            )
        if env.get("HUMANDESK_RESUME_WINDOW"):
            queue = replace(
                queue, visitor_lease_ms=int(float(env["HUMANDESK_RESUME_WINDOW"]) * 1000)
            )
        values["queue"] = queue
        if env.get("HUMANDESK_CONFIG"):
            values["config_file"] = Path(env["HUMANDESK_CONFIG"])
        if env.get("HUMANDESK_PRIORITY_SECRET"):
            values["priority_secret"] = env["HUMANDESK_PRIORITY_SECRET"]
        if env.get("HUMANDESK_MAX_JSON_DEPTH"):
            depth = int(env["HUMANDESK_MAX_JSON_DEPTH"])
            if not 4 <= depth <= 256:
                # Real messages nest two levels; far above 256 the parser's recursion
                # would come near Python's limit.
                raise ValueError("HUMANDESK_MAX_JSON_DEPTH must be 4-256")
            values["max_json_depth"] = depth
        if env.get("HUMANDESK_TRUSTED_PROXIES"):
            proxies = tuple(_split(env["HUMANDESK_TRUSTED_PROXIES"]))
            for proxy in proxies:
                ipaddress.ip_network(proxy, strict=False)  # a clear error at start
            values["trusted_proxies"] = proxies
        for name, attr, least in (
            ("HUMANDESK_RETENTION_DAYS", "retention_days", 0),
            ("HUMANDESK_AUDIT_RETENTION_DAYS", "audit_retention_days", 0),
            ("HUMANDESK_AUDIT_MAX_ENTRIES", "audit_max_entries", 1),
        ):
            if env.get(name):
                values[attr] = _number(env, name, int, minimum=least)
        if env.get("HUMANDESK_PRECALL_URL"):
            urls = tuple(u.rstrip("/") for u in _split(env["HUMANDESK_PRECALL_URL"]))
            if urls != ("off",) and not all(u.startswith(("http://", "https://")) for u in urls):
                raise ValueError("HUMANDESK_PRECALL_URL must be http(s) URLs, or off")
            values["precall_urls"] = () if urls == ("off",) else urls
        precall = {
            key: _number(env, name, kind, minimum=least)
            for name, (key, kind, least) in PRECALL_ENV.items()
            if env.get(name)
        }
        if precall:
            values["precall"] = replace(PrecallLimits(), **precall)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "brand" not in values:
            values["brand"] = load_brand(env, values.get("config_file"))
        return cls(**values)

    @property
    def title(self) -> str:
        """The desk's name on its pages: the brand's."""
        return self.brand.name

    def with_secret(self) -> Config:
        """This config with a secret key, generated once and kept in the data folder if unset."""
        if self.secret_key:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.data_dir / "secret_key"
        if not path.exists():
            tmp = path.with_name(f"secret_key.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
            try:
                os.link(tmp, path)  # atomic: the first process to link wins
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return replace(self, secret_key=path.read_text().strip())
