"""The ``humandesk`` command: run the desk, run the demo, manage agents."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import os
import secrets
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from humandesk.queue.client import DeskQueue
from humandesk.server import cli_privacy
from humandesk.server.accounts import ROLES, AccountError, Accounts, parse_queue_levels
from humandesk.server.app import REDIS_HEALTH, create_app
from humandesk.server.audit import AuditAction, AuditLog, cli_actor
from humandesk.server.collector import collector_policy
from humandesk.server.config import ENV_HELP, Config
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
from humandesk.web import render

log = logging.getLogger("humandesk")

DEMO_AGENT = "demo"


def _env_epilog() -> str:
    lines = ["environment variables (options win over them):"]
    lines += [f"  {name:<26} {text}" for name, text in ENV_HELP.items()]
    return "\n".join(lines)


def _wrapped(text: str) -> str:
    return textwrap.fill(text, 88)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="humandesk",
        description="A face-to-face video support desk: a 'Talk to a person' button, a fair "
        "queue, and WebRTC video calls with human agents.",
        epilog=_env_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
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
    serve.add_argument("--port", type=int, help="port to listen on (HUMANDESK_PORT)")
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
    worker.add_argument("--port", type=int, default=8079, help="port (default 8079)")
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
    demo.add_argument("--port", type=int, default=8080, help="the desk's port (default 8080)")
    demo.add_argument("--shop-port", type=int, default=8000, help="the shop's port (default 8000)")

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
    qremove = queue_sub.add_parser("remove", parents=[common], help="remove a queue")
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
    if config.redis_url:
        yield config, None
        return
    embedded = EmbeddedRedis(config.data_dir)
    try:
        url = embedded.start()
    except EmbeddedRedisError as exc:
        raise SystemExit(f"humandesk: {exc}") from None
    if embedded.owner:
        log.info("started a private Redis in %s", config.data_dir)
    try:
        if supervise:
            embedded.supervise(RestartPolicy(max_failures=config.redis_restarts))
        yield replace(config, redis_url=url), embedded
    finally:
        embedded.stop()


def desk_app(config: Config, embedded: EmbeddedRedis | None) -> web.Application:
    """The desk application, reporting the embedded Redis's health if there is one."""
    app = create_app(config)
    if embedded is not None:
        app[REDIS_HEALTH] = embedded.health
    return app


@contextlib.asynccontextmanager
async def accounts_for(config: Config) -> AsyncIterator[Accounts]:
    assert config.redis_url is not None
    redis = Redis.from_url(config.redis_url)
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
            raise SystemExit("humandesk: the passwords do not match")
        return first, False
    return secrets.token_urlsafe(12), True


async def _agent(args: argparse.Namespace, config: Config) -> int:
    async with accounts_for(config) as accounts:
        try:
            if args.agent_command == "add":
                queues, levels = parse_queue_levels(args.queue)
                password, generated = _read_password(args)
                account = await accounts.add(
                    args.name.lower(),
                    password,
                    queues,
                    args.display_name,
                    levels=levels,
                    role="supervisor" if args.supervisor else "agent",
                )
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
                if args.queue:
                    changes["queues"], changes["levels"] = parse_queue_levels(args.queue)
                if all(v is None for v in changes.values()):
                    raise AccountError("nothing to change: give --queue, --display-name or --role")
                account = await accounts.update(args.name.lower(), **changes)
                print(
                    f"agent {account.name} ({account.display_name}, {account.role}), "
                    f"queues: {', '.join(account.queues)}"
                )
                changed = {k: _shown(v) for k, v in changes.items() if v is not None}
                await _audit(config, accounts).record(
                    AuditAction.AGENT_CHANGED, cli_actor(), target=account.name, **changed
                )
        except AccountError as exc:
            print(f"humandesk: {exc}", file=sys.stderr)
            return 1
    return 0


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


def _setting(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep:
        raise QueueConfigError(f"expected KEY=VALUE, got {text!r}")
    value: Any = raw
    if key in SECONDS:
        value = float(raw) if raw else 0
    elif key in ("sla", "priority", "max_missed_offers"):
        value = int(raw) if raw.isdigit() else raw
    return key.strip(), value


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
                    raise QueueConfigError(f"no queue named {args.name!r}")
                print(json.dumps(describe(await desk.queue_rules(args.name)), indent=2))
            elif args.queue_command == "set":
                current = describe(await desk.own_rules(args.name))
                current.update(_setting(s) for s in args.settings)
                await desk.set_queue_rules(args.name, parse_rules(args.name, current))
                print(f"queue {args.name}: " + (" ".join(args.settings) or "created"))
            elif args.queue_command == "load":
                for name, rules in load_file(args.file).items():
                    await desk.set_queue_rules(name, rules)
                    print(f"queue {name}: loaded")
            elif args.queue_command == "remove":
                await desk.remove_queue(args.name)
                print(f"removed queue {args.name}")
        except QueueConfigError as exc:
            print(f"humandesk: {exc}", file=sys.stderr)
            return 1
    return 0


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The server's event loop: uvloop where it is installed, unless
    ``HUMANDESK_EVENT_LOOP=asyncio``. Every message a desk relays crosses the loop four
    times (socket in, Redis out, Redis in, socket out); see benchmarks/README.md."""
    if os.environ.get("HUMANDESK_EVENT_LOOP", "uvloop") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def cmd_serve(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with desk_redis(config) as (config, embedded), child_worker(config.precall_urls) as urls:
        config = replace(config, precall_urls=urls)
        app = desk_app(config, embedded)
        app.cleanup_ctx.append(_collector)
        print(
            f"humandesk is serving on http://{config.host}:{config.port}/ "
            f"(agent console: /agent, widget: /widget.js)",
            flush=True,
        )
        web.run_app(
            app,
            host=config.host,
            port=config.port,
            print=None,
            handle_signals=True,
            shutdown_timeout=5,
            loop=new_event_loop(),
        )
    return 0


async def _collector(_app: web.Application) -> AsyncIterator[None]:
    async with collector_policy():
        yield


def shop_app(desk_url: str, queue: str) -> web.Application:
    """The demo shop: a page on another origin that embeds the widget with one script tag."""

    async def page(_request: web.Request) -> web.Response:
        return web.Response(
            text=render("shop.html", desk_url=desk_url, queue=queue), content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/", page)
    return app


def cmd_demo(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    host, port, shop_port = args.host, args.port, args.shop_port
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
    with (
        desk_redis(config) as (config, embedded),
        child_worker(config.precall_urls) as urls,
        asyncio.Runner(loop_factory=new_event_loop) as runner,
    ):
        return runner.run(_demo(replace(config, precall_urls=urls), shop_port, embedded))


async def _demo(config: Config, shop_port: int, embedded: EmbeddedRedis | None) -> int:
    password = os.environ.get("HUMANDESK_DEMO_PASSWORD") or secrets.token_urlsafe(9)
    async with accounts_for(config) as accounts:
        for q in config.queues:
            await accounts.queue.add_queue(q)
        # A supervisor, so that the demo shows the wallboard too.
        await accounts.set_password_or_add(
            DEMO_AGENT, password, list(config.queues), "Demo Agent", role="supervisor"
        )
    desk_url = f"http://{config.host}:{config.port}"
    runners = []
    for app, port in (
        (desk_app(config, embedded), config.port),
        (shop_app(desk_url, config.queues[0]), shop_port),
    ):
        runner = web.AppRunner(app, shutdown_timeout=5)
        await runner.setup()
        await web.TCPSite(runner, config.host, port).start()
        runners.append(runner)
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
    logging.basicConfig(
        level=os.environ.get("HUMANDESK_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
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
