"""The `humandesk` command, on the embedded Redis, with and without a running server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port, python_env
from helpers import HUMANDESK, add_agent, run_humandesk, wait_ready


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
    assert short.returncode == 1 and "8 characters" in short.stderr
    # Without --password-stdin and without a terminal, a password is generated and printed.
    generated = humandesk(data_dir, "agent", "add", "cy", "--queue", "sales")
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
