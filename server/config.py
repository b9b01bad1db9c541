"""The desk's settings, read from ``HUMANDESK_*`` environment variables and CLI options."""

from __future__ import annotations

import ipaddress
import math
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from humandesk.queue.client import QueueConfig, RuleError
from humandesk.queue.keys import NAME_RE
from humandesk.queue.limits import AbuseLimits
from humandesk.queue.privacy import DEFAULT_AUDIT_RETENTION_DAYS, DEFAULT_RETENTION_DAYS, Retention
from humandesk.server.audit import DEFAULT_MAX_ENTRIES
from humandesk.server.brand import Brand, BrandError, load_brand
from humandesk.signaling.codes import MAX_JSON_DEPTH
from humandesk.signaling.limits import PrecallLimits
from humandesk.web.i18n import DEFAULT_LANGUAGE, LANGUAGES

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
    "HUMANDESK_REDIS_MODE": "single (default: one Redis server) or cluster: a Redis 7+ or "
    "Valkey Cluster, HUMANDESK_REDIS_URL naming any of its nodes (docs/cluster.md)",
    "HUMANDESK_REDIS_WAIT_MS": "cluster mode: after every queue change, wait up to this many "
    "ms for a replica to confirm it, so a failover loses nothing acknowledged (default 100; "
    "0: do not wait). A desk whose primary has no replica is refused at start unless 0",
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
    "HUMANDESK_LANGUAGE": "the pages' language when neither the embed script's data-lang "
    "nor the browser's languages name a shipped one: en (default), es, pl, is, de or fr",
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
    "HUMANDESK_CALL_GRACE": "seconds a call waits for a visitor whose connection to the desk "
    "is gone before it ends with peer_left (default 20)",
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
    "HUMANDESK_LOG_LEVEL": "DEBUG, INFO (default), WARNING, ERROR or CRITICAL",
    "HUMANDESK_DEMO_PASSWORD": "the demo agent's password, 8 characters or more (default: a "
    "new one per start of `humandesk demo`)",
}


class ConfigError(ValueError):
    """A setting that cannot be used; the message names it (the environment variable or
    the option) and says what it must be. The command prints it as one line, exit code 2."""


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _number(env: Mapping[str, str], name: str, kind: type, *, minimum: float) -> Any:
    text = env[name].strip()
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{name} must be {what}, not {env[name]!r}") from None
    if not minimum <= value < 1e12:  # also refuses nan
        raise ConfigError(f"{name} must be at least {minimum:g}, not {env[name]!r}")
    return value


def parse_port(text: str, name: str) -> int:
    """A TCP port, 1-65535: anything else would be refused by the kernel, or wrap around."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise ConfigError(f"{name} must be a port number from 1 to 65535, not {text!r}")
    return int(text)


#: Redis URL schemes redis-py connects with.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
#: The desk's name is a Redis hash tag: no braces, nothing a key name would trip on.
DESK_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_settings(values: Mapping[str, Any], names: Mapping[str, str]) -> None:
    """Raises ConfigError for a setting that cannot work; ``names`` says where each came
    from (the environment variable, or the option that overrode it)."""
    if "port" in values and not (isinstance(values["port"], int) and 1 <= values["port"] <= 65535):
        raise ConfigError(f"{names['port']} must be a port number from 1 to 65535")
    url = values.get("redis_url")
    if url and not str(url).startswith(REDIS_SCHEMES):
        schemes = ", ".join(REDIS_SCHEMES)
        raise ConfigError(f"{names['redis_url']} must be a URL starting {schemes}, not {url!r}")
    desk = values.get("desk")
    if desk is not None and not DESK_RE.match(str(desk)):
        raise ConfigError(
            f"{names['desk']} must be 1-64 letters, digits, '.', '_' or '-', not {desk!r}"
        )
    public = values.get("public_url")
    if public:
        _check_origin(str(public), names["public_url"])
    for origin in values.get("allowed_origins") or ():
        _check_origin(str(origin), names["allowed_origins"])
    url_schemes: dict[str, tuple[str, ...]] = {
        "stun_urls": ("stun:", "stuns:"),
        "turn_urls": ("turn:", "turns:"),
    }
    for key, prefixes in url_schemes.items():
        for ice_url in values.get(key) or ():
            if not str(ice_url).startswith(prefixes):
                raise ConfigError(
                    f"{names[key]} must hold {' or '.join(prefixes)} URLs, not {ice_url!r}"
                )
    for worker in values.get("precall_urls") or ():
        if not str(worker).startswith(("http://", "https://")):
            raise ConfigError(
                f"{names['precall_urls']} must be http(s) URLs, or off, not {worker!r}"
            )
    for queue in values.get("queues") or ():
        if not NAME_RE.match(str(queue)):
            raise ConfigError(
                f"{names['queues']}: {queue!r} is not a queue name "
                "(1-32 lowercase letters, digits, '.', '_' or '-')"
            )
    if "queues" in values and not values["queues"]:
        raise ConfigError(f"{names['queues']} must name at least one queue")


def _check_origin(origin: str, name: str) -> None:
    parts = urlsplit(origin)
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        raise ConfigError(f"{name}: {origin!r} has a bad port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
        raise ConfigError(
            f"{name}: {origin!r} is not an origin (scheme and host, e.g. https://shop.example)"
        )


#: Where each checked setting comes from: its environment variable, or the option.
ENV_NAMES = {
    "host": "HUMANDESK_HOST",
    "port": "HUMANDESK_PORT",
    "redis_url": "HUMANDESK_REDIS_URL",
    "desk": "HUMANDESK_DESK",
    "public_url": "HUMANDESK_PUBLIC_URL",
    "allowed_origins": "HUMANDESK_ALLOWED_ORIGINS",
    "queues": "HUMANDESK_QUEUES",
    "stun_urls": "HUMANDESK_STUN_URLS",
    "turn_urls": "HUMANDESK_TURN_URLS",
    "precall_urls": "HUMANDESK_PRECALL_URL",
}
OPTION_NAMES = {key: "--" + key.replace("_", "-") for key in ENV_NAMES} | {
    "precall_urls": "--precall-url"
}


def _brand_problem(exc: BrandError) -> str:
    """A brand setting's problem, naming the variable (or the file's [brand] table)."""
    text = str(exc)
    for key in ("name", "color", "logo"):
        if text.startswith(f"brand {key}"):
            return f"HUMANDESK_BRAND_{key.upper()} (or [brand] {key}): {text}"
    return f"HUMANDESK_CONFIG: {text}"


def _queue_config(env: Mapping[str, str]) -> QueueConfig:
    """The desk's queue defaults, with the offer timeout, the resume window and the call's
    grace period from the environment, each checked against its own range."""
    values: dict[str, Any] = {}
    names = {
        "offer_timeout_ms": "HUMANDESK_OFFER_TIMEOUT",
        "visitor_lease_ms": "HUMANDESK_RESUME_WINDOW",
        "call_lease_ms": "HUMANDESK_CALL_GRACE",
    }
    for key, name in names.items():
        if not env.get(name):
            continue
        try:
            seconds = float(env[name])
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds):
            raise ConfigError(f"{name} must be a number of seconds, not {env[name]!r}")
        values[key] = round(seconds * 1000)
    try:
        return QueueConfig(**values)
    except RuleError as exc:
        name = names.get(exc.rule, "HUMANDESK_RESUME_WINDOW")
        raise ConfigError(f"{name} {exc.must}, not {env[name]!r}") from None


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
    redis_mode: str = "single"  # or "cluster" (server/redis_connect.py)
    redis_wait_ms: int = 100  # cluster mode: WAIT 1 <ms> after every queue script
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
    language: str = DEFAULT_LANGUAGE  # the pages' last resort (web/i18n.py)
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
        """Settings from the environment; keyword arguments (CLI options) win.

        Raises ConfigError, naming the variable, for a value that cannot be used."""
        try:
            return cls._from_env(os.environ if env is None else env, overrides)
        except ConfigError:
            raise
        except ValueError as exc:  # a check of its own (a limit, ...): one line all the same
            raise ConfigError(str(exc)) from None

    @classmethod
    def _from_env(cls, env: Mapping[str, str], overrides: dict[str, Any]) -> Config:
        values: dict[str, Any] = {}
        if env.get("HUMANDESK_HOST"):
            values["host"] = env["HUMANDESK_HOST"].strip()
        if env.get("HUMANDESK_PORT"):
            values["port"] = parse_port(env["HUMANDESK_PORT"], "HUMANDESK_PORT")
        if env.get("HUMANDESK_REDIS_URL"):
            values["redis_url"] = env["HUMANDESK_REDIS_URL"].strip()
        if env.get("HUMANDESK_REDIS_MODE"):
            mode = env["HUMANDESK_REDIS_MODE"].strip().lower()
            if mode not in ("single", "cluster"):
                raise ConfigError(
                    f"HUMANDESK_REDIS_MODE must be single or cluster, not "
                    f"{env['HUMANDESK_REDIS_MODE']!r}"
                )
            values["redis_mode"] = mode
        if env.get("HUMANDESK_REDIS_WAIT_MS"):
            values["redis_wait_ms"] = _number(env, "HUMANDESK_REDIS_WAIT_MS", int, minimum=0)
        if env.get("HUMANDESK_DATA_DIR"):
            values["data_dir"] = Path(env["HUMANDESK_DATA_DIR"])
        if env.get("HUMANDESK_REDIS_RESTARTS"):
            restarts = env["HUMANDESK_REDIS_RESTARTS"].strip()
            if not (restarts.isascii() and restarts.isdigit()):
                raise ConfigError("HUMANDESK_REDIS_RESTARTS must be a whole number, 0 or more")
            values["redis_restarts"] = int(restarts)
        if env.get("HUMANDESK_DESK"):
            values["desk"] = env["HUMANDESK_DESK"].strip()
        if env.get("HUMANDESK_SECRET_KEY"):
            values["secret_key"] = env["HUMANDESK_SECRET_KEY"]
        if env.get("HUMANDESK_PUBLIC_URL"):
            values["public_url"] = env["HUMANDESK_PUBLIC_URL"].strip().rstrip("/")
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
                raise ConfigError(f"HUMANDESK_ICE_POLICY must be 'all' or 'relay', not {policy!r}")
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
        if env.get("HUMANDESK_LANGUAGE"):
            language = env["HUMANDESK_LANGUAGE"].strip().lower()
            if language not in LANGUAGES:
                raise ConfigError(
                    f"HUMANDESK_LANGUAGE must be one of {', '.join(LANGUAGES)}, "
                    f"not {env['HUMANDESK_LANGUAGE']!r}"
                )
            values["language"] = language
        if env.get("HUMANDESK_METRICS_TOKEN"):
            values["metrics_token"] = env["HUMANDESK_METRICS_TOKEN"]
        limits = {
            key: _number(env, name, kind, minimum=0)
            for name, (key, kind) in LIMIT_ENV.items()
            if env.get(name)
        }
        if limits:
            values["limits"] = replace(AbuseLimits(), **limits)
        values["queue"] = _queue_config(env)
        if env.get("HUMANDESK_CONFIG"):
            values["config_file"] = Path(env["HUMANDESK_CONFIG"])
        if env.get("HUMANDESK_PRIORITY_SECRET"):
            values["priority_secret"] = env["HUMANDESK_PRIORITY_SECRET"]
        if env.get("HUMANDESK_MAX_JSON_DEPTH"):
            depth = env["HUMANDESK_MAX_JSON_DEPTH"].strip()
            # Real messages nest two levels; far above 256 the parser's recursion would
            # come near Python's limit.
            if not (depth.isascii() and depth.isdigit()) or not 4 <= int(depth) <= 256:
                raise ConfigError(f"HUMANDESK_MAX_JSON_DEPTH must be 4-256, not {depth!r}")
            values["max_json_depth"] = int(depth)
        if env.get("HUMANDESK_TRUSTED_PROXIES"):
            proxies = tuple(_split(env["HUMANDESK_TRUSTED_PROXIES"]))
            for proxy in proxies:
                try:
                    ipaddress.ip_network(proxy, strict=False)
                except ValueError:
                    raise ConfigError(
                        f"HUMANDESK_TRUSTED_PROXIES must hold addresses or networks, not {proxy!r}"
                    ) from None
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
                raise ConfigError(
                    "HUMANDESK_PRECALL_URL must be http(s) URLs, or off, "
                    f"not {env['HUMANDESK_PRECALL_URL']!r}"
                )
            values["precall_urls"] = () if urls == ("off",) else urls
        precall = {
            key: _number(env, name, kind, minimum=least)
            for name, (key, kind, least) in PRECALL_ENV.items()
            if env.get(name)
        }
        if precall:
            values["precall"] = replace(PrecallLimits(), **precall)
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)
        names = {key: OPTION_NAMES.get(key, key) for key in given}
        names = {key: ENV_NAMES.get(key, key) for key in values} | names
        check_settings(values, names)
        if "brand" not in values:
            try:
                values["brand"] = load_brand(env, values.get("config_file"))
            except BrandError as exc:
                raise ConfigError(_brand_problem(exc)) from None
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
