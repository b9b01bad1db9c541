"""The ``humandesk`` command: run the desk, run the demo, manage agents."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import fcntl
import getpass
import json
import logging
import os
import secrets
import signal
import socket
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from humandesk.queue.client import DeskQueue
from humandesk.queue.keys import NAME_RE
from humandesk.server import cli_privacy
from humandesk.server.accounts import (
    ROLES,
    AccountError,
    Accounts,
    AccountValueError,
    parse_queue_levels,
)
from humandesk.server.app import REDIS_HEALTH, create_app
from humandesk.server.audit import AuditAction, AuditLog, cli_actor
from humandesk.server.collector import collector_policy
from humandesk.server.config import ENV_HELP, Config, ConfigError, parse_port
from humandesk.server.embedded_redis import EmbeddedRedis, EmbeddedRedisError, RestartPolicy
from humandesk.server.precall import child_worker
from humandesk.server.queues import (
    OTHER,
    SECONDS,
    QueueConfigError,
    describe,
    load_file,
    parse_rules,
)
from humandesk.server.redis_connect import ClusterRefused, check_cluster, connect
from humandesk.web import render
from humandesk.web.i18n import LANGUAGES

log = logging.getLogger("humandesk")

DEMO_AGENT = "demo"

#: Exit codes: 0 done; 1 the desk refused (no such agent or queue, already exists);
#: 2 a bad setting, option or value (one line names it); 3 something the command needs is
#: not there or is taken: Redis cannot be reached, the port is in use, a demo already runs.
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_CODES = (
    "exit codes: 0 done; 1 refused (no such agent or queue, already exists); 2 a bad "
    "setting, option or value; 3 Redis cannot be reached, the port is in use, or a demo "
    "already runs on this data folder"
)
REDIS_CONNECT_TIMEOUT_S = 5  # a Redis that does not answer a connect by then is unreachable
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
EVENT_LOOPS = ("uvloop", "asyncio")


class CommandError(Exception):
    """Ends the command with one line on stderr and ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    """Refuses a bad option or value in one line (exit code 2), not with the whole usage."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def port_option(text: str) -> int:
    try:
        return parse_port(text, "port")
    except ConfigError:
        raise argparse.ArgumentTypeError(
            f"must be a port number from 1 to 65535, not {text!r}"
        ) from None


def _env_epilog() -> str:
    lines = ["environment variables (options win over them):"]
    lines += [f"  {name:<26} {text}" for name, text in ENV_HELP.items()]
    return "\n".join([*lines, "", EXIT_CODES])


def _wrapped(text: str) -> str:
    return textwrap.fill(text, 88)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="humandesk",
        description="A face-to-face video support desk: a 'Talk to a person' button, a fair "
        "queue, and WebRTC video calls with human agents.",
        epilog=_env_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = Parser(add_help=False)
    common.add_argument("--redis-url", help="Redis URL (HUMANDESK_REDIS_URL)")
    common.add_argument("--data-dir", type=Path, help="data folder (HUMANDESK_DATA_DIR)")
    common.add_argument("--desk", help="desk name (HUMANDESK_DESK)")
    common.add_argument("--config", type=Path, help="TOML file of queues (HUMANDESK_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="run the desk server",
        description=_wrapped(
            "Run the desk server. It starts one pre-call test worker "
            "(`humandesk precall-worker`) as a child process on a free loopback port. To run the "
            "workers separately (on other cores or machines, with their own limits), start each "
            "with `humandesk precall-worker --host H --port P` and give the desk their URLs: "
            "HUMANDESK_PRECALL_URL=http://H:P[,http://H2:P2] (or --precall-url); a busy or "
            "unreachable worker hands the test to the next. HUMANDESK_PRECALL_URL=off runs no "
            "test: the visitor panel says it could not run, and joining works as ever."
        ),
        epilog=_env_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="address to listen on (HUMANDESK_HOST)")
    serve.add_argument("--port", type=port_option, help="port to listen on (HUMANDESK_PORT)")
    serve.add_argument("--secret-key", help="signing key (HUMANDESK_SECRET_KEY)")
    serve.add_argument("--public-url", help="public origin (HUMANDESK_PUBLIC_URL)")
    serve.add_argument(
        "--allowed-origins", help="sites that may embed the widget (HUMANDESK_ALLOWED_ORIGINS)"
    )
    serve.add_argument("--queues", help="queues to create (HUMANDESK_QUEUES)")
    serve.add_argument("--stun-urls", help="STUN URLs (HUMANDESK_STUN_URLS)")
    serve.add_argument("--turn-urls", help="TURN URLs (HUMANDESK_TURN_URLS)")
    serve.add_argument("--turn-secret", help="TURN REST secret (HUMANDESK_TURN_SECRET)")
    serve.add_argument(
        "--precall-url", help="pre-call workers run separately, or off (HUMANDESK_PRECALL_URL)"
    )

    worker = sub.add_parser(
        "precall-worker",
        help="run a pre-call test worker (aiortc echo peers; serve starts one by itself)",
        description=_wrapped(
            "A pre-call test worker: an HTTP server on a local port that answers a "
            "visitor's complete SDP offer (POST /offer, relayed by the desk) with an aiortc peer "
            "that echoes the camera and microphone back. Limits: HUMANDESK_PRECALL_PEERS, "
            "_QUEUE, _WAIT, _SECONDS. Keep it on a private address: only the desk talks to it."
        ),
        epilog=_env_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    worker.add_argument("--port", type=port_option, default=8079, help="port (default 8079)")
    worker.add_argument(
        "--nice",
        type=int,
        default=0,
        help="lower the worker's CPU priority by this much (serve starts its own with 10, so "
        "the desk's signaling always comes first on a shared machine)",
    )

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="run the demo: a shop page with the button, the desk, and a demo agent",
    )
    demo.add_argument("--host", default="127.0.0.1", help="address for both servers")
    demo.add_argument(
        "--port", type=port_option, default=8080, help="the desk's port (default 8080)"
    )
    demo.add_argument(
        "--shop-port", type=port_option, default=8000, help="the shop's port (default 8000)"
    )

    agent = sub.add_parser("agent", help="manage agent accounts")
    agent_sub = agent.add_subparsers(dest="agent_command", required=True, metavar="ACTION")
    add = agent_sub.add_parser("add", parents=[common], help="add an agent")
    add.add_argument("name")
    add.add_argument(
        "--queue",
        action="append",
        required=True,
        help="a queue the agent serves, optionally with a level: support or sales:2 "
        "(repeatable; level-2 agents are offered a visitor only after the queue's "
        "escalation time or when no level-1 agent is free)",
    )
    add.add_argument(
        "--create-queue",
        action="store_true",
        help="create the queues given with --queue that the desk does not have yet "
        "(without it, an unknown queue is refused)",
    )
    add.add_argument(
        "--supervisor", action="store_true", help="a supervisor (also sees statistics)"
    )
    add.add_argument("--display-name", default="", help="the name visitors see")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    agent_sub.add_parser("list", parents=[common], help="list agents")
    remove = agent_sub.add_parser(
        "remove", parents=[common], help="remove an agent (their consoles close at once)"
    )
    remove.add_argument("name")
    for action, text in (
        ("disable", "stop an agent signing in; their consoles close at once"),
        ("enable", "let a disabled agent sign in again"),
    ):
        agent_sub.add_parser(action, parents=[common], help=text).add_argument("name")
    passwd = agent_sub.add_parser(
        "passwd", parents=[common], help="set a new password (their consoles sign out)"
    )
    passwd.add_argument("name")
    passwd.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    aset = agent_sub.add_parser(
        "set",
        parents=[common],
        help="change an agent's queues, display name or role (their consoles reconnect)",
    )
    aset.add_argument("name")
    aset.add_argument(
        "--queue", action="append", help="the queues, replacing the old list (as for add)"
    )
    aset.add_argument(
        "--create-queue", action="store_true", help="create unknown queues (as for add)"
    )
    aset.add_argument("--display-name", help="the name visitors see")
    aset.add_argument("--role", choices=ROLES, help="agent or supervisor")

    queue = sub.add_parser(
        "queue",
        help="configure queues",
        description="Queues and their rules. Settings (seconds unless noted): "
        + ", ".join([*SECONDS, *OTHER]),
    )
    queue_sub = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    queue_sub.add_parser("list", parents=[common], help="list queues and their rules")
    show = queue_sub.add_parser("show", parents=[common], help="show one queue's rules")
    show.add_argument("name")
    qset = queue_sub.add_parser(
        "set", parents=[common], help="create a queue or change its rules: KEY=VALUE ..."
    )
    qset.add_argument("name")
    qset.add_argument(
        "settings",
        nargs="*",
        metavar="KEY=VALUE",
        help='e.g. wrapup=45 strategy=round-robin hours="mon-fri 09:00-17:00"',
    )
    load = queue_sub.add_parser("load", parents=[common], help="apply a TOML file of queues")
    load.add_argument("file", type=Path)
    qremove = queue_sub.add_parser(
        "remove", parents=[common], help="remove a queue (exit code 1 if there is none)"
    )
    qremove.add_argument("name")
    cli_privacy.add_commands(sub, common)
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    def split(value: str | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        return tuple(p.strip().rstrip("/") for p in value.split(",") if p.strip())

    options: dict[str, Any] = {
        "redis_url": getattr(args, "redis_url", None),
        "data_dir": getattr(args, "data_dir", None),
        "desk": getattr(args, "desk", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "secret_key": getattr(args, "secret_key", None),
        "public_url": getattr(args, "public_url", None),
        "allowed_origins": split(getattr(args, "allowed_origins", None)),
        "queues": split(getattr(args, "queues", None)),
        "stun_urls": split(getattr(args, "stun_urls", None)),
        "turn_urls": split(getattr(args, "turn_urls", None)),
        "turn_secret": getattr(args, "turn_secret", None),
        "config_file": getattr(args, "config", None),
        "precall_urls": _precall_urls(getattr(args, "precall_url", None)),
    }
    return Config.from_env(**options)


def _precall_urls(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    urls = tuple(u.strip().rstrip("/") for u in value.split(",") if u.strip())
    return () if urls == ("off",) else urls


@contextlib.contextmanager
def redis_for(config: Config) -> Any:
    """The config with a Redis URL: the configured one, or a private embedded redis-server
    (unsupervised: for short commands)."""
    with desk_redis(config, supervise=False) as (config, _embedded):
        yield config


@contextlib.contextmanager
def desk_redis(
    config: Config, *, supervise: bool = True
) -> Iterator[tuple[Config, EmbeddedRedis | None]]:
    """The config with a Redis URL, and the embedded Redis if the desk runs one.

    For the long-running commands (serve, demo) the embedded Redis is supervised: restarted
    when it dies, its health shown by /readyz and /healthz (see :func:`desk_app`)."""
    if config.redis_mode == "cluster" and not config.redis_url:
        raise CommandError(
            "HUMANDESK_REDIS_MODE=cluster needs HUMANDESK_REDIS_URL (any node of the cluster)"
        )
    if config.redis_url:
        yield config, None
        return
    check_data_dir(config)
    embedded = EmbeddedRedis(config.data_dir)
    try:
        url = embedded.start()
    except EmbeddedRedisError as exc:
        raise CommandError(str(exc), EXIT_UNAVAILABLE) from None
    if embedded.owner:
        log.info("started a private Redis in %s", config.data_dir)
    try:
        if supervise:
            embedded.supervise(RestartPolicy(max_failures=config.redis_restarts))
        yield replace(config, redis_url=url), embedded
    finally:
        embedded.stop()


def check_data_dir(config: Config) -> None:
    """The data folder, made if missing; one that cannot be used ends the command."""
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not os.access(config.data_dir, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "not writable")
    except OSError as exc:
        raise CommandError(
            f"HUMANDESK_DATA_DIR / --data-dir: cannot use {str(config.data_dir)!r}: "
            f"{exc.strerror or exc}"
        ) from None


def desk_app(config: Config, embedded: EmbeddedRedis | None) -> web.Application:
    """The desk application, reporting the embedded Redis's health if there is one."""
    app = create_app(config)
    if embedded is not None:
        app[REDIS_HEALTH] = embedded.health
    return app


@contextlib.asynccontextmanager
async def accounts_for(config: Config) -> AsyncIterator[Accounts]:
    assert config.redis_url is not None
    redis = connect(config.redis_url, config.redis_mode, max_connections=4)
    try:
        queue = DeskQueue(redis, config.desk, config.queue)
        yield Accounts(redis, queue)
    finally:
        await redis.aclose()


# Commands --------------------------------------------------------------------------------


def cmd_agent(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with redis_for(config) as config:
        return asyncio.run(_agent(args, config))


def _read_password(args: argparse.Namespace) -> tuple[str, bool]:
    """The agent's new password, and whether it was generated (and must be printed)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if sys.stdin.isatty():
        first = getpass.getpass(f"Password for {args.name}: ")
        if first != getpass.getpass("Repeat the password: "):
            raise CommandError("the passwords do not match", EXIT_REFUSED)
        return first, False
    return secrets.token_urlsafe(12), True


async def _agent(args: argparse.Namespace, config: Config) -> int:
    async with accounts_for(config) as accounts:
        try:
            if args.agent_command == "add":
                queues, levels = _queue_levels(args.queue)
                unknown = await _unknown_queues(config, accounts, queues, args.create_queue)
                password, generated = _read_password(args)
                account = await accounts.add(
                    args.name.lower(),
                    password,
                    queues,
                    args.display_name,
                    levels=levels,
                    role="supervisor" if args.supervisor else "agent",
                )
                await _create_queues(accounts, unknown)
                print(
                    f"added agent {account.name} ({account.display_name}), "
                    f"queues: {', '.join(account.queues)}"
                )
                if generated:
                    print(f"password: {password}")
                await _audit(config, accounts).record(
                    AuditAction.AGENT_ADDED,
                    cli_actor(),
                    target=account.name,
                    role=account.role,
                    queues=",".join(account.queues),
                )
            elif args.agent_command == "list":
                rows = await accounts.all()
                if not rows:
                    print("no agents yet: add one with 'humandesk agent add NAME --queue support'")
                for account in rows:
                    state = await accounts.queue.agent(account.name)
                    status = state["state"] if state else "offline"
                    if account.disabled:
                        status = "disabled"
                    print(
                        f"{account.name:<20} {account.display_name:<24} "
                        f"{','.join(account.queues):<20} {account.role:<11} {status}"
                    )
            elif args.agent_command == "remove":
                await accounts.remove(args.name.lower())
                print(f"removed agent {args.name.lower()}")
                await _audit(config, accounts).record(
                    AuditAction.AGENT_REMOVED, cli_actor(), target=args.name.lower()
                )
            elif args.agent_command in ("disable", "enable"):
                disabled = args.agent_command == "disable"
                await accounts.set_disabled(args.name.lower(), disabled)
                print(f"{args.agent_command}d agent {args.name.lower()}")
                await _audit(config, accounts).record(
                    AuditAction.AGENT_DISABLED if disabled else AuditAction.AGENT_ENABLED,
                    cli_actor(),
                    target=args.name.lower(),
                )
            elif args.agent_command == "passwd":
                password, generated = _read_password(args)
                await accounts.set_password(args.name.lower(), password)
                print(f"new password set for {args.name.lower()}; their sessions were ended")
                if generated:
                    print(f"password: {password}")
                await _audit(config, accounts).record(
                    AuditAction.PASSWORD_CHANGED, cli_actor(), target=args.name.lower()
                )
            elif args.agent_command == "set":
                changes: dict[str, Any] = {"display_name": args.display_name, "role": args.role}
                unknown = []
                if args.queue:
                    changes["queues"], changes["levels"] = _queue_levels(args.queue)
                    unknown = await _unknown_queues(
                        config, accounts, changes["queues"], args.create_queue
                    )
                if all(v is None for v in changes.values()):
                    raise AccountValueError(
                        "nothing to change: give --queue, --display-name or --role"
                    )
                account = await accounts.update(args.name.lower(), **changes)
                await _create_queues(accounts, unknown)
                print(
                    f"agent {account.name} ({account.display_name}, {account.role}), "
                    f"queues: {', '.join(account.queues)}"
                )
                changed = {k: _shown(v) for k, v in changes.items() if v is not None}
                await _audit(config, accounts).record(
                    AuditAction.AGENT_CHANGED, cli_actor(), target=account.name, **changed
                )
        except AccountValueError as exc:
            raise CommandError(str(exc)) from None
        except AccountError as exc:
            raise CommandError(str(exc), EXIT_REFUSED) from None
    return 0


def _queue_levels(specs: list[str]) -> tuple[list[str], dict[str, int]]:
    """``--queue`` options as queues and levels; a bad one ends the command (exit code 2)."""
    try:
        queues, levels = parse_queue_levels(specs)
    except AccountError as exc:
        raise CommandError(f"--queue: {exc}") from None
    for name in queues:
        if not NAME_RE.match(name):
            raise CommandError(
                f"--queue: {name!r} is not a queue name "
                "(1-32 lowercase letters, digits, '.', '_' or '-')"
            )
    return queues, levels


async def _unknown_queues(
    config: Config, accounts: Accounts, queues: list[str], create: bool
) -> list[str]:
    """The queues in ``queues`` the desk does not have (neither in Redis nor among those it
    creates at start, HUMANDESK_QUEUES). Without ``create`` one is refused: a misspelt
    ``--queue`` would give the agent a line nobody ever joins."""
    known = set(await accounts.queue.queue_names(refresh=True)) | set(config.queues)
    unknown = [q for q in dict.fromkeys(queues) if q not in known]
    if unknown and not create:
        raise CommandError(
            f"--queue: no queue named {unknown[0]!r} (queues: {', '.join(sorted(known))}); "
            "add --create-queue to create it"
        )
    return unknown


async def _create_queues(accounts: Accounts, names: list[str]) -> None:
    for name in names:
        await accounts.queue.add_queue(name)
        print(f"created queue {name}")


def _audit(config: Config, accounts: Accounts) -> AuditLog:
    return AuditLog(accounts.redis, accounts.queue.keys, max_entries=config.audit_max_entries)


def _shown(value: Any) -> str:
    """An account change as the audit log shows it: queues and levels as on the command line."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in value.items())
    return str(value)


def cmd_queue(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with redis_for(config) as config:
        return asyncio.run(_queue(args, config))


def _setting(queue: str, text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` as typed, with numbers read as numbers (parse_rules checks them)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep:
        raise QueueConfigError(f"expected KEY=VALUE, got {text!r}")
    value: Any = raw
    if key in SECONDS:
        try:
            value = float(raw) if raw.strip() else 0
        except ValueError:
            raise QueueConfigError(
                f"{queue}.{key} must be a number of seconds, not {raw!r}"
            ) from None
    elif key in ("sla", "priority", "max_missed_offers"):
        value = int(raw) if raw.strip().lstrip("-").isdigit() else raw
    return key, value


async def _queue(args: argparse.Namespace, config: Config) -> int:
    async with accounts_for(config) as accounts:
        desk = accounts.queue
        try:
            if args.queue_command == "list":
                for name in await desk.queue_names(refresh=True):
                    rules = describe(await desk.queue_rules(name))
                    shown = " ".join(f"{k}={v}" for k, v in rules.items() if v not in ("", None))
                    print(f"{name:<16} {shown}")
            elif args.queue_command == "show":
                if args.name not in await desk.queue_names(refresh=True):
                    raise CommandError(f"no queue named {args.name!r}", EXIT_REFUSED)
                print(json.dumps(describe(await desk.queue_rules(args.name)), indent=2))
            elif args.queue_command == "set":
                current = describe(await desk.own_rules(args.name))
                current.update(_setting(args.name, s) for s in args.settings)
                queues = {*await desk.queue_names(refresh=True), *config.queues, args.name}
                rules = parse_rules(args.name, current, queues=queues)
                await desk.set_queue_rules(args.name, rules)
                print(f"queue {args.name}: " + (" ".join(args.settings) or "created"))
            elif args.queue_command == "load":
                for name, rules in load_file(args.file).items():
                    await desk.set_queue_rules(name, rules)
                    print(f"queue {name}: loaded")
            elif args.queue_command == "remove":
                if args.name not in await desk.queue_names(refresh=True):
                    raise CommandError(f"no queue named {args.name!r}", EXIT_REFUSED)
                await desk.remove_queue(args.name)
                print(f"removed queue {args.name}")
        except QueueConfigError as exc:
            raise CommandError(str(exc)) from None
    return 0


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The server's event loop: uvloop where it is installed, unless
    ``HUMANDESK_EVENT_LOOP=asyncio``. Every message a desk relays crosses the loop four
    times (socket in, Redis out, Redis in, socket out); see benchmarks/README.md."""
    if os.environ.get("HUMANDESK_EVENT_LOOP", "uvloop").strip() != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def check_config_file(config: Config) -> None:
    """A queue file that cannot be read or holds a bad rule ends the command before it
    starts anything (the server would fail on it at start)."""
    if config.config_file is not None:
        try:
            load_file(config.config_file)
        except QueueConfigError as exc:
            raise CommandError(f"HUMANDESK_CONFIG / --config: {exc}") from None


def check_port(
    host: str, port: int, what: str = "the desk", option: str = "--port or HUMANDESK_PORT"
) -> None:
    """Ends the command if ``host:port`` cannot be listened on, before anything has been
    started or changed: bound and let go at once, with SO_REUSEADDR as aiohttp binds."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CommandError(
            f"--host / HUMANDESK_HOST: cannot listen on {host!r}: {exc.strerror}"
        ) from None
    for family, kind, proto, _name, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise port_error(host, port, exc, what, option) from None


def port_error(
    host: str,
    port: int,
    exc: OSError,
    what: str = "the desk",
    option: str = "--port or HUMANDESK_PORT",
) -> CommandError:
    """One line for a port that cannot be listened on."""
    if exc.errno == errno.EADDRINUSE:
        return CommandError(
            f"port {port} on {host} is in use by another program; choose another port for "
            f"{what} ({option})",
            EXIT_UNAVAILABLE,
        )
    if exc.errno == errno.EACCES:
        return CommandError(
            f"not allowed to listen on port {port} (ports below 1024 need privileges)",
            EXIT_UNAVAILABLE,
        )
    return CommandError(
        f"--host / HUMANDESK_HOST: cannot listen on {host}:{port}: {exc.strerror or exc}"
    )


def check_redis(config: Config) -> None:
    """Ends the command (exit code 3) if the desk's Redis does not answer; on a cluster,
    also (exit code 2) if it cannot run the desk as configured (:func:`check_cluster`)."""
    assert config.redis_url is not None
    if config.redis_mode == "cluster":
        check_desk_cluster(config)
        return

    async def ping() -> None:
        redis = Redis.from_url(
            config.redis_url or "", socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S
        )
        try:
            await redis.ping()
        finally:
            await redis.aclose()

    asyncio.run(ping())


def check_desk_cluster(config: Config) -> None:
    async def check(url: str) -> str:
        redis = connect(url, "cluster")
        assert isinstance(redis, RedisCluster)
        try:
            return await check_cluster(redis, config.desk, config.redis_wait_ms)
        finally:
            await redis.aclose()

    assert config.redis_url is not None
    try:
        where = asyncio.run(check(config.redis_url))
    except ClusterRefused as exc:
        raise CommandError(str(exc)) from None
    except (redis_errors.RedisError, redis_errors.RedisClusterException, OSError) as exc:
        raise CommandError(
            f"cannot reach the Redis Cluster at {config.redis_url}: {exc}", EXIT_UNAVAILABLE
        ) from None
    log.info("desk %r on the cluster: %s", config.desk, where)


@contextlib.contextmanager
def live_redis(config: Config) -> Iterator[tuple[Config, EmbeddedRedis | None]]:
    """:func:`desk_redis`, checked to answer before anything else starts."""
    with desk_redis(config) as (config, embedded):
        check_redis(config)
        yield config, embedded


def cmd_serve(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    check_config_file(config)
    check_data_dir(config)
    check_port(config.host, config.port)
    with live_redis(config) as (config, embedded), child_worker(config.precall_urls) as urls:
        config = replace(config, precall_urls=urls)
        app = desk_app(config, embedded)
        app.cleanup_ctx.append(_collector)
        print(
            f"humandesk is serving on http://{config.host}:{config.port}/ "
            f"(agent console: /agent, widget: /widget.js)",
            flush=True,
        )
        try:
            web.run_app(
                app,
                host=config.host,
                port=config.port,
                print=None,
                handle_signals=True,
                shutdown_timeout=5,
                loop=new_event_loop(),
            )
        except OSError as exc:
            if isinstance(exc, redis_errors.RedisError) or exc.errno is None:
                raise
            raise port_error(config.host, config.port, exc) from None  # taken since the check
    return 0


async def _collector(_app: web.Application) -> AsyncIterator[None]:
    async with collector_policy():
        yield


def shop_app(desk_url: str, queue: str) -> web.Application:
    """The demo shop: a page on another origin that embeds the widget with one script tag."""

    async def page(request: web.Request) -> web.Response:
        # ?lang=pl puts data-lang="pl" on the embed script, as a shop in Poland would.
        lang = request.query.get("lang", "")
        html = render(
            "shop.html",
            desk_url=desk_url,
            queue=queue,
            widget_lang=lang if lang in LANGUAGES else "",
        )
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    return app


@contextlib.contextmanager
def demo_lock(data_dir: Path, desk_url: str) -> Iterator[None]:
    """Held while a demo runs on ``data_dir``: a second demo there would reset the first
    one's password, so it is refused before it changes anything (exit code 3)."""
    path = data_dir / "demo.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            running = os.read(fd, 512).decode(errors="replace").strip() or "?"
            raise CommandError(
                f"a humandesk demo is already running on {data_dir} ({running}); "
                "use that one, or stop it first (Ctrl+C where it runs)",
                EXIT_UNAVAILABLE,
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, {desk_url}".encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def demo_password() -> str:
    """The demo agent's password: HUMANDESK_DEMO_PASSWORD, or a new one per start."""
    password = os.environ.get("HUMANDESK_DEMO_PASSWORD", "")
    if password and not 8 <= len(password) <= 1024:
        raise CommandError("HUMANDESK_DEMO_PASSWORD must be 8 to 1,024 characters")
    return password or secrets.token_urlsafe(9)


def cmd_demo(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    host, port, shop_port = args.host, args.port, args.shop_port
    if port == shop_port:
        raise CommandError(f"--port and --shop-port are both {port}: give them two ports")
    check_config_file(config)
    check_data_dir(config)
    password = demo_password()
    shop_origins = (
        f"http://{host}:{shop_port}",
        f"http://localhost:{shop_port}",
        f"http://127.0.0.1:{shop_port}",
    )
    config = replace(
        config,
        host=host,
        port=port,
        allowed_origins=tuple(dict.fromkeys(config.allowed_origins + shop_origins)),
    )
    # Before anything is started or changed: a demo already running here, the ports.
    with demo_lock(config.data_dir, f"http://{host}:{port}"):
        check_port(host, port)
        check_port(host, shop_port, "the demo's shop", "--shop-port")
        with (
            live_redis(config) as (config, embedded),
            child_worker(config.precall_urls) as urls,
            asyncio.Runner(loop_factory=new_event_loop) as runner,
        ):
            config = replace(config, precall_urls=urls)
            return runner.run(_demo(config, shop_port, embedded, password))


async def _demo(
    config: Config, shop_port: int, embedded: EmbeddedRedis | None, password: str
) -> int:
    async with accounts_for(config) as accounts:
        for q in config.queues:
            await accounts.queue.add_queue(q)
        # A supervisor, so that the demo shows the wallboard too.
        await accounts.set_password_or_add(
            DEMO_AGENT, password, list(config.queues), "Demo Agent", role="supervisor"
        )
    desk_url = f"http://{config.host}:{config.port}"
    runners = []
    for app, port, what, option in (
        (desk_app(config, embedded), config.port, "the desk", "--port"),
        (shop_app(desk_url, config.queues[0]), shop_port, "the demo's shop", "--shop-port"),
    ):
        runner = web.AppRunner(app, shutdown_timeout=5)
        await runner.setup()
        runners.append(runner)
        try:
            await web.TCPSite(runner, config.host, port).start()
        except OSError as exc:  # taken since the check
            for started in reversed(runners):
                await started.cleanup()
            raise port_error(config.host, port, exc, what, option) from None
    print(
        "\nhumandesk demo is running\n"
        f"  shop with the button:  http://{config.host}:{shop_port}/\n"
        f"  agent console:         {desk_url}/agent\n"
        f"  demo agent login:      {DEMO_AGENT} / {password}\n"
        "Open the agent console, sign in and go Available; then open the shop in another\n"
        "window and click 'Talk to a person'. Press Ctrl+C to stop.\n",
        flush=True,
    )
    async with collector_policy():
        await _until_stopped()
    for runner in reversed(runners):
        await runner.cleanup()
    return 0


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def cmd_precall_worker(args: argparse.Namespace) -> int:
    from humandesk.signaling.precall import worker_app  # aiortc: only this command needs it

    limits = Config.from_env().precall
    check_port(args.host, args.port, "the pre-call worker", "--port")
    if args.nice > 0:
        os.nice(args.nice)
    for noisy in ("aioice", "aiortc"):  # a line per candidate pair otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    print(
        f"humandesk pre-call worker on http://{args.host}:{args.port}/ "
        f"({limits.max_peers} at once, {limits.queue} waiting)",
        flush=True,
    )
    web.run_app(
        worker_app(limits),
        host=args.host,
        port=args.port,
        print=None,
        handle_signals=True,
        shutdown_timeout=3,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command. A bad setting, option or value, an unreachable Redis or a port in
    use end it with one line on stderr and an exit code (EXIT_CODES), never a traceback."""
    try:
        return _main(argv)
    except CommandError as exc:
        return _fail(str(exc), exc.code)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
        return _fail(f"cannot reach Redis: {exc}", EXIT_UNAVAILABLE)


def _fail(message: str, code: int) -> int:
    print("humandesk: " + " ".join(message.split()), file=sys.stderr)
    return code


def _environment() -> None:
    """The settings read here rather than in Config: the log level and the event loop."""
    level = os.environ.get("HUMANDESK_LOG_LEVEL", "").strip().upper() or "INFO"
    if level not in LOG_LEVELS:
        raise ConfigError(
            f"HUMANDESK_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, "
            f"not {os.environ['HUMANDESK_LOG_LEVEL']!r}"
        )
    loop = os.environ.get("HUMANDESK_EVENT_LOOP", "").strip()
    if loop and loop not in EVENT_LOOPS:
        raise ConfigError(f"HUMANDESK_EVENT_LOOP must be uvloop or asyncio, not {loop!r}")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    _environment()
    if args.command in ("agent", "queue", *cli_privacy.COMMANDS):
        logging.getLogger().setLevel(logging.WARNING)
    if args.command == "serve":
        return cmd_serve(args)
    if args.command == "demo":
        return cmd_demo(args)
    if args.command == "precall-worker":
        return cmd_precall_worker(args)
    if args.command == "queue":
        return cmd_queue(args)
    if args.command in cli_privacy.COMMANDS:
        with redis_for(config_from_args(args)) as config:
            return asyncio.run(cli_privacy.run(args, config))
    return cmd_agent(args)


if __name__ == "__main__":
    sys.exit(main())
