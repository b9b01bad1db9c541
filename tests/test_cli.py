"""The `humandesk` command, on the embedded Redis, with and without a running server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from humandesk.server import cli
from humandesk.server.config import ENV_HELP

from conftest import free_port, python_env
from helpers import HUMANDESK, add_agent, run_humandesk, running_humandesk, wait_ready


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Short, because the embedded Redis listens on a unix socket inside it.
    path = Path(tempfile.mkdtemp(prefix="hd-", dir="/tmp"))
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def env_for(data_dir: Path) -> dict[str, str]:
    env = python_env() | {"HUMANDESK_DATA_DIR": str(data_dir)}
    env.pop("HUMANDESK_REDIS_URL", None)
    return env


def humandesk(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_humandesk(*args, env=env_for(data_dir))


def login(url: str, username: str, password: str) -> int:
    request = urllib.request.Request(
        url + "/api/login",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json", "Origin": url},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def redis_servers_for(data_dir: Path) -> int:
    """How many live redis-server processes have this data folder open."""
    count = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            if not exe.endswith("redis-server"):
                continue
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    continue
            fds = os.listdir(f"/proc/{pid}/fd")
            targets = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds}
        except OSError:
            continue
        if any(t.startswith(str(data_dir)) for t in targets):
            count += 1
    return count


#: What ``humandesk --help`` names, among the rest: settings and commands.
HELP_NAMES = (
    "HUMANDESK_REDIS_URL",
    "HUMANDESK_SECRET_KEY",
    "HUMANDESK_ALLOWED_ORIGINS",
    "HUMANDESK_TURN_URLS",
    "serve",
    "demo",
    "agent",
    # personal data: the retention purge, erasing one visitor, the audit log
    "HUMANDESK_RETENTION_DAYS",
    "HUMANDESK_AUDIT_RETENTION_DAYS",
    "HUMANDESK_AUDIT_MAX_ENTRIES",
    "privacy",
    "audit",
)


def test_help_documents_environment() -> None:
    out = run_humandesk("--help").stdout
    for name in HELP_NAMES:
        assert name in out, name
    serve = run_humandesk("serve", "--help").stdout
    assert "--host" in serve and "--port" in serve


def test_agents_managed_with_and_without_a_running_server(data_dir: Path) -> None:
    env = env_for(data_dir)
    add = add_agent(env, "ada", "correct horse")
    assert add.returncode == 0, add.stderr
    assert "added agent ada" in add.stdout
    dup = add_agent(env, "ada", "correct horse")
    assert dup.returncode == 1 and "already exists" in dup.stderr
    short = add_agent(env, "eve", "short")
    assert "8 characters" in refused_in_one_line(short)  # a bad value: exit code 2
    # Without --password-stdin and without a terminal, a password is generated and printed.
    generated = humandesk(data_dir, "agent", "add", "cy", "--queue", "sales", "--create-queue")
    assert generated.returncode == 0 and "password: " in generated.stdout
    cy_password = generated.stdout.split("password: ", 1)[1].strip()
    assert redis_servers_for(data_dir) == 0  # each command stopped the Redis it started

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [*HUMANDESK, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_ready(url, server)
        assert login(url, "ada", "correct horse") == 200
        assert login(url, "cy", cy_password) == 200
        # While the server runs, the command uses the server's Redis: never a second one.
        add_bob = add_agent(env, "bob", "battery staple")
        assert add_bob.returncode == 0, add_bob.stderr
        assert redis_servers_for(data_dir) == 1
        assert login(url, "bob", "battery staple") == 200
        removed = humandesk(data_dir, "agent", "remove", "ada")
        assert removed.returncode == 0, removed.stderr
        assert login(url, "ada", "correct horse") == 401
        listing = humandesk(data_dir, "agent", "list").stdout
        assert "bob" in listing and "ada" not in listing
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
    assert redis_servers_for(data_dir) == 0
    # The data outlived the server: append-only persistence in the data folder.
    listing = humandesk(data_dir, "agent", "list").stdout
    assert "bob" in listing and "cy" in listing and "ada" not in listing
    assert humandesk(data_dir, "agent", "remove", "nobody").returncode == 1


def test_demo_serves_a_cross_origin_shop(data_dir: Path) -> None:
    desk_port, shop_port = free_port(), free_port()
    env = env_for(data_dir) | {"HUMANDESK_DEMO_PASSWORD": "demo-password-1"}
    demo = subprocess.Popen(
        [*HUMANDESK, "demo", "--port", str(desk_port), "--shop-port", str(shop_port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    desk = f"http://127.0.0.1:{desk_port}"
    try:
        wait_ready(desk, demo)  # type: ignore[arg-type]
        with urllib.request.urlopen(f"http://127.0.0.1:{shop_port}/", timeout=10) as resp:
            shop = resp.read().decode()
        assert f'src="{desk}/widget.js"' in shop and 'data-queue="support"' in shop
        assert login(desk, "demo", "demo-password-1") == 200
        with urllib.request.urlopen(
            f"{desk}/visitor?queue=support&host=http://127.0.0.1:{shop_port}", timeout=10
        ) as resp:
            csp = resp.headers["Content-Security-Policy"]
        assert f"frame-ancestors http://127.0.0.1:{shop_port}" in csp
    finally:
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=20)
    assert "demo / demo-password-1" in out
    assert demo.returncode == 0
    assert redis_servers_for(data_dir) == 0


# Bad settings, options and values: one line that names them, exit code 2 -------------------


def refused_in_one_line(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The command's one line on stderr, after checking it ended with ``code`` and no
    traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


#: A bad value of every setting that has one.
BAD_SETTINGS: dict[str, str] = {
    "HUMANDESK_HOST": "no such host!",
    "HUMANDESK_PORT": "abc",
    "HUMANDESK_REDIS_URL": "localhost:6379",
    "HUMANDESK_REDIS_MODE": "sharded",
    "HUMANDESK_REDIS_WAIT_MS": "soon",
    "HUMANDESK_DATA_DIR": "/dev/null/desk",
    "HUMANDESK_REDIS_RESTARTS": "two",
    "HUMANDESK_DESK": "my {desk}",
    "HUMANDESK_PUBLIC_URL": "desk.example",
    "HUMANDESK_ALLOWED_ORIGINS": "https://shop.example, shop2.example",
    "HUMANDESK_QUEUES": "Support Desk",
    "HUMANDESK_STUN_URLS": "stun.example:3478",
    "HUMANDESK_TURN_URLS": "turn.example:3478",
    "HUMANDESK_ICE_POLICY": "none",
    "HUMANDESK_OFFER_TIMEOUT": "-1",
    "HUMANDESK_SESSION_TTL": "0",
    "HUMANDESK_IDLE_SIGNOUT": "-5",
    "HUMANDESK_TURN_TTL": "soon",
    "HUMANDESK_JOINS_PER_MINUTE": "many",
    "HUMANDESK_WAITING_PER_ADDRESS": "-1",
    "HUMANDESK_CALLBACKS_PER_HOUR": "5/h",
    "HUMANDESK_MAX_OPEN_CALLBACKS": "-1",
    "HUMANDESK_MESSAGES_PER_SECOND": "nan",
    "HUMANDESK_MESSAGE_BURST": "1.5",
    "HUMANDESK_LOGIN_LIMIT_ACCOUNT": "ten",
    "HUMANDESK_LOGIN_LIMIT_ADDRESS": "-1",
    "HUMANDESK_CONFIG": "/nonexistent/desk.toml",
    "HUMANDESK_RESUME_WINDOW": "0",
    "HUMANDESK_CALL_GRACE": "5",
    "HUMANDESK_EVENT_LOOP": "tokio",
    "HUMANDESK_MAX_JSON_DEPTH": "deep",
    "HUMANDESK_TRUSTED_PROXIES": "the-proxy",
    "HUMANDESK_RETENTION_DAYS": "-1",
    "HUMANDESK_AUDIT_RETENTION_DAYS": "a year",
    "HUMANDESK_AUDIT_MAX_ENTRIES": "0",
    "HUMANDESK_LOG_LEVEL": "loud",
    "HUMANDESK_DEMO_PASSWORD": "short",
    "HUMANDESK_DRAIN_TIMEOUT": "soon",
    "HUMANDESK_BRAND_NAME": "x" * 200,
    "HUMANDESK_LANGUAGE": "klingon",
    "HUMANDESK_BRAND_COLOR": "teal",
    "HUMANDESK_BRAND_LOGO": "/nonexistent/logo.png",
    "HUMANDESK_CHAT_MAX_MESSAGES": "-1",
    "HUMANDESK_PRECALL_URL": "worker:8079",
    "HUMANDESK_PRECALLS_PER_MINUTE": "six",
    "HUMANDESK_PRECALL_PEERS": "0",
    "HUMANDESK_PRECALL_QUEUE": "-1",
    "HUMANDESK_PRECALL_WAIT": "long",
    "HUMANDESK_PRECALL_SECONDS": "0",
}
#: The command a bad setting is given to: ``queue list`` unless named here (every command
#: reads the settings; the listening address and the queue file only `serve`).
BAD_SETTING_COMMAND = ("queue", "list")
BAD_SETTING_COMMANDS: dict[str, tuple[str, ...]] = {
    "HUMANDESK_HOST": ("serve",),
    "HUMANDESK_PORT": ("serve",),
    "HUMANDESK_CONFIG": ("serve",),
    "HUMANDESK_DEMO_PASSWORD": ("demo",),
}
#: Settings any text is good for.
FREE_TEXT = {
    "HUMANDESK_SECRET_KEY",
    "HUMANDESK_TURN_SECRET",
    "HUMANDESK_METRICS_TOKEN",
    "HUMANDESK_PRIORITY_SECRET",
}


def test_every_setting_is_checked() -> None:
    assert set(BAD_SETTINGS) | FREE_TEXT == set(ENV_HELP)


@pytest.mark.parametrize("name", sorted(BAD_SETTINGS))
def test_a_bad_setting_ends_the_command_in_one_line(
    name: str,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    value, command = BAD_SETTINGS[name], BAD_SETTING_COMMANDS.get(name, BAD_SETTING_COMMAND)
    if command[0] in ("serve", "demo"):
        # The real command: were the setting taken, it would serve until killed.
        line = refused_in_one_line(run_humandesk(*command, env=env_for(data_dir) | {name: value}))
        assert name in line, line
    else:
        # The command's own main, in this process: a subprocess for each would be slow
        # (the test below runs some of them as the real command).
        monkeypatch.setenv("HUMANDESK_DATA_DIR", str(data_dir))
        monkeypatch.delenv("HUMANDESK_REDIS_URL", raising=False)
        monkeypatch.setenv(name, value)
        assert cli.main(list(command)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and name in err[0], err
    assert redis_servers_for(data_dir) == 0  # refused before anything started


@pytest.mark.parametrize(
    ("env", "args", "named"),
    [
        ({"HUMANDESK_PORT": "abc"}, ("serve",), "HUMANDESK_PORT"),
        ({"HUMANDESK_PORT": "99999"}, ("serve",), "HUMANDESK_PORT"),
        ({}, ("serve", "--port", "99999"), "--port"),
        ({}, ("demo", "--shop-port", "0"), "--shop-port"),
        ({"HUMANDESK_OFFER_TIMEOUT": "abc"}, ("agent", "list"), "HUMANDESK_OFFER_TIMEOUT"),
        ({}, ("queue", "set", "support", "offer_timeout=abc"), "support.offer_timeout"),
        ({}, ("agent", "add", "ada", "--queue", "support:x"), "--queue"),
        ({}, ("audit", "--limit", "many"), "--limit"),
        ({}, ("serve", "--precall-url", "worker:8079"), "--precall-url"),
        ({}, ("precall-worker", "--port", "70000"), "--port"),
    ],
)
def test_bad_values_of_the_real_command(
    env: dict[str, str], args: tuple[str, ...], named: str, data_dir: Path
) -> None:
    result = run_humandesk(*args, env=env_for(data_dir) | env)
    assert named in refused_in_one_line(result)
    assert redis_servers_for(data_dir) == 0


def test_unreachable_redis_is_one_line(data_dir: Path) -> None:
    env = env_for(data_dir) | {"HUMANDESK_REDIS_URL": f"redis://127.0.0.1:{free_port()}"}
    for args in (("agent", "list"), ("queue", "set", "support", "wrapup=5"), ("serve",)):
        line = refused_in_one_line(run_humandesk(*args, env=env), code=3)
        assert line.startswith("humandesk: cannot reach Redis"), line


def test_a_busy_port_is_named(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_humandesk("serve", "--port", str(port), env=env_for(data_dir))
        line = refused_in_one_line(result, code=3)
        assert f"port {port} on 127.0.0.1 is in use" in line
        demo = run_humandesk("demo", "--shop-port", str(port), env=env_for(data_dir))
        assert f"port {port} on 127.0.0.1 is in use" in refused_in_one_line(demo, code=3)
    assert redis_servers_for(data_dir) == 0
    # Nothing was started or changed: no demo agent was made.
    assert "demo" not in humandesk(data_dir, "agent", "list").stdout


def test_a_second_demo_changes_nothing(data_dir: Path) -> None:
    desk_port, shop_port = free_port(), free_port()
    env = env_for(data_dir) | {"HUMANDESK_DEMO_PASSWORD": "first-password"}
    ports = ("--port", str(desk_port), "--shop-port", str(shop_port))
    desk = f"http://127.0.0.1:{desk_port}"
    with running_humandesk("demo", *ports, env=env, port=desk_port, stop=signal.SIGINT) as first:
        again = env | {"HUMANDESK_DEMO_PASSWORD": "second-password"}
        # On the same ports, and on others: the data folder is the first one's.
        for args in (ports, ("--port", str(free_port()), "--shop-port", str(free_port()))):
            line = refused_in_one_line(run_humandesk("demo", *args, env=again), code=3)
            assert "a humandesk demo is already running" in line and desk in line, line
        assert login(desk, "demo", "first-password") == 200
        assert login(desk, "demo", "second-password") == 401
        assert first.poll() is None


def test_queue_rules_are_checked(data_dir: Path) -> None:
    assert humandesk(data_dir, "queue", "set", "sales").returncode == 0
    for setting, named in (
        ("overflow=nosuch", "support.overflow names an unknown queue 'nosuch'"),
        ("overflow=support", "support.overflow must name another queue"),
        ("offer_timeout=-1", "support.offer_timeout must be a number of seconds from 1"),
        ("offer_timeout=0", "support.offer_timeout must be a number of seconds from 1"),
        ("wrapup=-5", "support.wrapup must be a number of seconds from 0"),
        ("max_wait=inf", "support.max_wait must be a number of seconds"),
        ("priority=10", "support.priority must be a whole number from 0 to 9"),
        ("max_missed_offers=0", "support.max_missed_offers must be a whole number from 1"),
        ("strategy=fastest", "support.strategy must be one of"),
        ("hours=someday", "support.hours cannot be read"),
        ("timezone=Mars/Olympus", "support.timezone cannot be read"),
        ("colour=teal", "unknown setting support.colour"),
    ):
        line = refused_in_one_line(humandesk(data_dir, "queue", "set", "support", setting))
        assert named in line, (setting, line)
    assert humandesk(data_dir, "queue", "set", "support", "overflow=sales").returncode == 0
    shown = json.loads(humandesk(data_dir, "queue", "show", "support").stdout)
    # Nothing refused was kept.
    assert (shown["overflow"], shown["offer_timeout"], shown["wrapup"]) == ("sales", 20, 30)
    assert (shown["priority"], shown["strategy"], shown["hours"]) == (0, "longest-idle", "")
    gone = humandesk(data_dir, "queue", "remove", "nosuch")
    assert refused_in_one_line(gone, code=1) == "humandesk: no queue named 'nosuch'"
    assert gone.stdout == ""


def test_agents_get_known_queues_only(data_dir: Path) -> None:
    env = env_for(data_dir)
    add = ("agent", "add", "ada", "--password-stdin")
    misspelt = run_humandesk(*add, "--queue", "suport", env=env, stdin="correct horse\n")
    line = refused_in_one_line(misspelt)
    assert "no queue named 'suport'" in line and "--create-queue" in line
    assert "ada" not in humandesk(data_dir, "agent", "list").stdout
    # The queues the desk creates at start (HUMANDESK_QUEUES) are known before it first ran.
    assert (
        run_humandesk(*add, "--queue", "support", env=env, stdin="correct horse\n").returncode == 0
    )
    changed = humandesk(data_dir, "agent", "set", "ada", "--queue", "returns")
    assert "no queue named 'returns'" in refused_in_one_line(changed)
    created = humandesk(data_dir, "agent", "set", "ada", "--queue", "returns", "--create-queue")
    assert created.returncode == 0 and "created queue returns" in created.stdout
    assert "returns" in humandesk(data_dir, "queue", "list").stdout
