"""The deployment to copy (Dockerfile, deploy/compose.yaml, deploy/k8s/), checked without Docker
or Kubernetes, which cannot run here.

* The files are validated by the tools that can: the compose file against the Compose
  Specification's JSON schema (vendored in deploy/schema/, checked with check-jsonschema),
  the Kubernetes manifests against the Kubernetes API schemas (kubernetes-validate, strict),
  the Dockerfile by hadolint, the proxy configuration by ``nginx -t``.
* The compose topology then runs on loopback, from the compose file itself: Redis with the
  command line of its ``redis`` service, coturn with ``turnserver.conf`` and the command
  line of its ``coturn`` service, three ``humandesk serve`` processes started with the
  image's command (the Dockerfile's ``CMD``) and environment (its ``ENV`` and the desk
  services' ``environment``), and Debian's nginx with ``deploy/nginx.conf`` and a
  self-signed certificate. Only the addresses change: every service listens on 127.0.0.1
  on a port of its own. One visitor goes through the proxy's TLS port to an agent signed
  in through it, on another server, and the TURN credentials of the call are accepted by
  coturn.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import fnmatch
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from benchmarks.harness import HOST, find_redis_server, free_port, stop_process, wait_http

from conftest import REPO, need
from helpers import Peer, add_agent, run_humandesk

DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
COMPOSE_SCHEMA = DEPLOY / "schema" / "compose-spec.json"
K8S = DEPLOY / "k8s"
DOCKERFILE = REPO / "Dockerfile"
VENV_BIN = Path(sys.executable).parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TURNSERVER = os.environ.get("HUMANDESK_TURNSERVER") or shutil.which("turnserver") or "turnserver"
DESKS = ("desk1", "desk2", "desk3")
AGENT_ADDRESS = "127.0.0.2"

#: What an operator puts into deploy/.env, for the loopback run.
DOT_ENV = {
    "DESK_DOMAIN": "127.0.0.1",
    "HUMANDESK_SECRET_KEY": "deploy-test-secret-key-0123456789abcdefghijklmnop",
    "HUMANDESK_TURN_SECRET": "deploy-test-turn-secret",
    "TURN_EXTERNAL_IP": "127.0.0.1",
    "HUMANDESK_ALLOWED_ORIGINS": "",
    "HUMANDESK_QUEUES": "support",
    "HUMANDESK_METRICS_TOKEN": "",
}


# Reading the files ---------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation: ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
    ``${VAR:?error}`` and ``${VAR?error}`` (the forms the compose file uses)."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        value = env.get(name)
        if op in (":-", ":?") and not value:
            value = None
        if value is not None:
            return value
        if op in (":?", "?"):
            raise ValueError(f"{name}: {arg}")
        return arg if op in (":-", "-") else ""

    return _VARIABLE.sub(one, text)


def compose_file(env: dict[str, str] | None = None) -> dict[str, Any]:
    import yaml

    loaded: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE.read_text(), env or DOT_ENV))
    return loaded


@dataclass
class Dockerfile:
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    healthcheck_options: dict[str, str] = field(default_factory=dict)
    user: str = ""
    instructions: list[tuple[str, str]] = field(default_factory=list)


def dockerfile() -> Dockerfile:
    """The runtime stage's ENV, USER, HEALTHCHECK and CMD (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    parsed = Dockerfile()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        parsed.instructions.append((word, rest.strip()))
        if word == "FROM":  # a new stage: only the last one's settings count
            parsed.env, parsed.cmd, parsed.healthcheck, parsed.user = {}, [], [], ""
        elif word == "ENV":
            for part in shlex.split(rest):
                key, _, value = part.partition("=")
                parsed.env[key] = value
        elif word == "USER":
            parsed.user = rest.strip()
        elif word == "CMD":
            parsed.cmd = json.loads(rest)
        elif word == "HEALTHCHECK":
            options, _, command = rest.partition("CMD ")
            parsed.healthcheck = json.loads(command)
            for option in options.split():
                key, _, value = option.removeprefix("--").partition("=")
                parsed.healthcheck_options[key] = value
    return parsed


def seconds(duration: str) -> float:
    """A compose duration such as ``35s`` or ``1m30s``."""
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def k8s_documents() -> dict[str, dict[str, Any]]:
    import yaml

    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    return docs


def tool(name: str) -> str:
    """A command-line tool the test extras install into the venv."""
    path = VENV_BIN / name
    need(path.exists(), f"{name} (pip install -e '.[test]')")
    return str(path)


# The files, validated ------------------------------------------------------------------------


def test_compose_file_is_valid_by_the_compose_specification(tmp_path: Path) -> None:
    check = tool("check-jsonschema")
    ok = subprocess.run(
        [check, "--schemafile", str(COMPOSE_SCHEMA), str(COMPOSE)],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # The schema is strict enough to catch a misspelt key: the check is real.
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("stop_grace_period:", "stop_grace_periods:"))
    bad = subprocess.run(
        [check, "--schemafile", str(COMPOSE_SCHEMA), str(broken)], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "stop_grace_periods" in bad.stdout + bad.stderr


def test_compose_topology_has_what_the_deployment_needs() -> None:
    compose = compose_file()
    services = compose["services"]
    assert set(services) == {"redis", "coturn", *DESKS, "proxy"}
    # Redis: an append-only file, never an eviction of the queue's keys.
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    # Three desk servers of the one image, each given more time to stop than the drain.
    for name in DESKS:
        desk = services[name]
        assert desk["build"] == {"context": "..", "dockerfile": "Dockerfile"}
        env = desk["environment"]
        assert env["HUMANDESK_REDIS_URL"] == "redis://redis:6379/0"
        assert env["HUMANDESK_SECRET_KEY"] == DOT_ENV["HUMANDESK_SECRET_KEY"]
        assert env["HUMANDESK_TURN_SECRET"] == DOT_ENV["HUMANDESK_TURN_SECRET"]
        assert seconds(desk["stop_grace_period"]) > float(env["HUMANDESK_DRAIN_TIMEOUT"])
        # The trusted proxies are the desk network: where nginx connects from.
        subnet = compose["networks"]["desk"]["ipam"]["config"][0]["subnet"]
        assert env["HUMANDESK_TRUSTED_PROXIES"] == subnet
    # coturn checks the credentials the desks mint with the same secret.
    turn = services["coturn"]["command"]
    assert f"--static-auth-secret={DOT_ENV['HUMANDESK_TURN_SECRET']}" in turn
    conf = (DEPLOY / "turnserver.conf").read_text().splitlines()
    assert "use-auth-secret" in conf and "denied-peer-ip=127.0.0.0-127.255.255.255" in conf
    # The proxy publishes TLS and mounts the nginx configuration that is tested below.
    proxy = services["proxy"]
    assert "443:443" in proxy["ports"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    # Compose refuses to start without the secrets (no default secret key).
    with pytest.raises(ValueError, match="HUMANDESK_SECRET_KEY"):
        compose_file({k: v for k, v in DOT_ENV.items() if k != "HUMANDESK_SECRET_KEY"})


def test_kubernetes_manifests_are_valid_and_drain_in_time() -> None:
    validate = tool("kubernetes-validate")
    files = sorted(str(p) for p in K8S.glob("*.yaml"))
    result = subprocess.run([validate, "--strict", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(files), result.stdout

    docs = k8s_documents()
    deployment = docs["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (container,) = pod["containers"]
    assert container["command"] == dockerfile().cmd == ["humandesk", "serve"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    # The grace period holds the preStop pause and the whole drain.
    pause = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    drain = float(docs["ConfigMap"]["data"]["HUMANDESK_DRAIN_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] > float(pause[1]) + drain
    # The secret key and the Redis URL come from the Secret.
    sources = {ref.get("secretRef", {}).get("name") for ref in container["envFrom"]}
    assert docs["Secret"]["metadata"]["name"] in sources
    assert {"HUMANDESK_SECRET_KEY", "HUMANDESK_REDIS_URL"} <= set(docs["Secret"]["stringData"])
    assert not {"HUMANDESK_SECRET_KEY", "HUMANDESK_REDIS_URL"} & set(docs["ConfigMap"]["data"])
    # The budget and the Service select the Deployment's pods; no session affinity.
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert docs["Service"]["spec"]["selector"].items() <= labels.items()
    assert "sessionAffinity" not in docs["Service"]["spec"]
    rollout = deployment["spec"]["strategy"]["rollingUpdate"]
    assert rollout["maxUnavailable"] == 0


def test_dockerfile_passes_hadolint_and_runs_unprivileged() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    image = dockerfile()
    assert image.user and not image.user.startswith(("0", "root"))
    assert image.cmd == ["humandesk", "serve"]
    assert any("/healthz" in part for part in image.healthcheck)
    assert image.env["HUMANDESK_HOST"] == "0.0.0.0"
    assert image.instructions[0][1].startswith("python:3.11-slim")
    # The build context is an allow-list: no .venv, data folder or test output goes in.
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ignore[[line.strip() for line in ignore].index("*")] == "*"
    copied = [rest.split()[0] for word, rest in image.instructions if word == "COPY"]
    for source in copied:
        if not source.startswith("--"):
            assert f"!{source}" in ignore, f"{source} is copied but ignored"


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``path`` out: Docker's rules, as far as
    .dockerignore uses them (the last matching pattern wins, ``!`` takes back in, a
    pattern naming a folder covers what is in it, ``**/`` matches any depth or none)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for raw in patterns:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.removeprefix("!").rstrip("/")
        options = {pattern, pattern.removeprefix("**/")}
        if any(fnmatch.fnmatchcase(p, o) for p in prefixes for o in options):
            ignored = not negate
    return ignored


def test_the_image_build_context_builds_the_package(tmp_path: Path) -> None:
    """What the build stage does, without Docker: the files .dockerignore lets into the
    context become a wheel holding the scripts, templates and static files the server
    needs (`pip install .` in the image builds the same wheel)."""
    patterns = (REPO / ".dockerignore").read_text().splitlines()
    for left_out in (".venv/bin/python", ".git/HEAD", "tests/conftest.py", "deploy/.env",
                     "humandesk-data/secret_key", "server/__pycache__/cli.cpython-311.pyc",
                     "web/tests/machine.test.mjs"):  # fmt: skip
        assert dockerignored(left_out, patterns), left_out
    context = tmp_path / "context"
    copied = 0
    for top in ("pyproject.toml", "README.md", "server", "signaling", "queue", "web"):
        sources = [REPO / top] if (REPO / top).is_file() else (REPO / top).rglob("*")
        for source in sources:
            relative = source.relative_to(REPO).as_posix()
            if source.is_file() and not dockerignored(relative, patterns):
                (context / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, context / relative)
                copied += 1
    assert (context / "server" / "cli.py").exists() and copied > 50
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
         str(tmp_path / "dist"), str(context)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("humandesk-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    needed_files = (
        "humandesk/server/cli.py",
        "humandesk/queue/scripts/join.lua",
        "humandesk/web/templates/visitor.html",
        "humandesk/web/static/widget.js",
    )
    for needed in needed_files:
        assert needed in names, f"{needed} is not in the image's package"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        assert "humandesk = humandesk.server.cli:main" in archive.read(entry_points).decode()


# The topology, running -----------------------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, as deploy/certs/ would hold."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "humandesk test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    chain, private = directory / "fullchain.pem", directory / "privkey.pem"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return chain, private


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on {port}:\n{log.read_text()[-3000:]}")


def wait_ready(topo: Topology, name: str) -> None:
    """Waits for a desk server's /readyz; its log in the failure if it exits."""
    try:
        wait_http(f"http://{HOST}:{topo.ports[name]}/readyz", topo.procs[name])
    except RuntimeError as exc:
        raise AssertionError(f"{exc}\n{topo.output(name)[-3000:]}") from None


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} is not in the file once"
    return text.replace(old, new)


@dataclass
class Topology:
    """The compose services on loopback."""

    workdir: Path
    ports: dict[str, int]
    desk_env: dict[str, dict[str, str]]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    ca: Path | None = None
    desk_command: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"https://{HOST}:{self.ports['proxy_tls']}"

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = self.workdir / f"{name}.log"
        self.logs[name] = log
        with open(log, "ab") as out:
            self.procs[name] = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
            )

    def output(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")


def loopback_value(value: str, ports: dict[str, int]) -> str:
    """A desk setting from the compose file with the services' addresses on loopback."""
    value = value.replace("redis://redis:6379", f"redis://{HOST}:{ports['redis']}")
    value = value.replace(f"{HOST}:3478", f"{HOST}:{ports['coturn']}")
    if value == f"https://{HOST}":
        value = f"https://{HOST}:{ports['proxy_tls']}"
    return value


@contextlib.contextmanager
def running_topology() -> Iterator[Topology]:
    need(Path(NGINX).exists(), "nginx (Debian's nginx)")
    need(shutil.which(TURNSERVER) is not None or Path(TURNSERVER).exists(), "coturn")
    redis_binary = find_redis_server()
    need(redis_binary is not None, "redis-server")
    assert redis_binary is not None
    compose = compose_file()
    services = compose["services"]
    image = dockerfile()
    workdir = Path(tempfile.mkdtemp(prefix="hd-deploy-"))
    ports = {name: free_port() for name in ("redis", "coturn", "proxy_tls", "proxy_http", *DESKS)}
    topo = Topology(workdir=workdir, ports=ports, desk_env={})
    try:
        # Redis, with the redis service's command line.
        (workdir / "redis").mkdir()
        command = services["redis"]["command"]
        topo.start(
            "redis",
            [redis_binary, *command[1:], "--bind", HOST, "--port", str(ports["redis"]),
             "--dir", str(workdir / "redis")],
        )  # fmt: skip
        wait_port(ports["redis"], topo.procs["redis"], "redis", topo.logs["redis"])

        # coturn, with turnserver.conf and the coturn service's command line.
        turn_args = list(services["coturn"]["command"])
        mounted = {v.split(":")[1]: v.split(":")[0] for v in services["coturn"]["volumes"]}
        config_path = turn_args[turn_args.index("-c") + 1]
        turn_args[turn_args.index("-c") + 1] = str(DEPLOY / mounted[config_path])
        low = 40000 + (ports["coturn"] % 200) * 100
        topo.start(
            "coturn",
            [TURNSERVER, *turn_args, "--listening-ip", HOST, "--relay-ip", HOST,
             "--listening-port", str(ports["coturn"]), "--min-port", str(low),
             "--max-port", str(low + 99), "--userdb", str(workdir / "turndb"),
             "--pidfile", str(workdir / "turn.pid")],
        )  # fmt: skip
        wait_port(ports["coturn"], topo.procs["coturn"], "coturn", topo.logs["coturn"])
        # coturn goes on past an option it does not know: its log must not say so.
        assert "Bad configuration format" not in topo.output("coturn"), topo.output("coturn")

        # Three desk servers: the image's command, the image's and the service's environment.
        command = [str(VENV_BIN / image.cmd[0]), *image.cmd[1:]]
        assert Path(command[0]).exists(), command
        topo.desk_command = command
        for name in DESKS:
            env = {k: v for k, v in image.env.items() if k != "PATH"}
            # A variable without a value (null) is passed from compose's own environment:
            # unset here.
            service_env = services[name]["environment"].items()
            env.update({k: str(v) for k, v in service_env if v is not None})
            env = {k: loopback_value(v, ports) for k, v in env.items()}
            env.update(
                PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                HOME=str(workdir),
                # Loopback instead of the container's 0.0.0.0 and port 8080.
                HUMANDESK_HOST=HOST,
                HUMANDESK_PORT=str(ports[name]),
                HUMANDESK_DATA_DIR=str(workdir / name),
                # The proxy's address on loopback, instead of the compose network.
                HUMANDESK_TRUSTED_PROXIES=HOST,
            )
            topo.desk_env[name] = env
            topo.start(name, command, env)
        for name in DESKS:
            wait_ready(topo, name)

        # nginx, with deploy/nginx.conf: the upstreams, listeners and files on loopback.
        certs = workdir / "certs"
        certs.mkdir()
        topo.ca, _key = self_signed(certs)
        conf = (DEPLOY / "nginx.conf").read_text()
        for name in DESKS:
            conf = replace_once(conf, f"server {name}:8080", f"server {HOST}:{ports[name]}")
        conf = replace_once(conf, "listen 443 ssl;", f"listen {HOST}:{ports['proxy_tls']} ssl;")
        conf = replace_once(conf, "listen 80;", f"listen {HOST}:{ports['proxy_http']};")
        conf = conf.replace("/etc/nginx/certs/", f"{certs}/")
        conf = replace_once(conf, "/var/run/nginx.pid", str(workdir / "nginx.pid"))
        conf = replace_once(conf, "access_log /dev/stdout", f"access_log {workdir}/access.log")
        # Buffers in the test's folder, not the package's /var/lib/nginx.
        conf = replace_once(
            conf,
            "http {",
            f"http {{\n    client_body_temp_path {workdir}/body;\n"
            f"    proxy_temp_path {workdir}/proxy;",
        )
        (workdir / "nginx.conf").write_text(conf)
        nginx = [NGINX, "-p", f"{workdir}/", "-c", str(workdir / "nginx.conf")]
        checked = subprocess.run([*nginx, "-t"], capture_output=True, text=True)
        assert checked.returncode == 0 and "test is successful" in checked.stderr, checked.stderr
        topo.start("proxy", [*nginx, "-g", "daemon off;"])
        wait_port(ports["proxy_tls"], topo.procs["proxy"], "nginx", topo.logs["proxy"])
        yield topo
    finally:
        for name in ("proxy", *DESKS, "coturn", "redis"):
            stop_process(topo.procs.get(name))
        shutil.rmtree(workdir, ignore_errors=True)


async def turn_allocates(host: str, port: int, username: str, password: str) -> bool:
    """Whether coturn grants a relay allocation to these credentials."""
    from aioice.turn import create_turn_endpoint

    try:
        transport, _protocol = await asyncio.wait_for(
            create_turn_endpoint(
                asyncio.DatagramProtocol, (host, port), username, password, lifetime=60
            ),
            10,
        )
    except Exception:
        return False
    transport.close()
    return True


def upstreams(access_log: Path, path: str) -> list[str]:
    """The desk servers nginx sent the requests for ``path`` to, in the order logged."""
    lines = access_log.read_text().splitlines() if access_log.exists() else []
    return [line.split("upstream=")[1].split()[0] for line in lines if f"GET {path} " in line]


@pytest.mark.slow
def test_compose_topology_serves_a_call_through_the_tls_proxy() -> None:
    with running_topology() as topo:
        # The image's health check, run as Docker would run it in each container.
        image = dockerfile()
        check = [sys.executable if image.healthcheck[0] == "python" else image.healthcheck[0]]
        check += image.healthcheck[1:]
        for name in DESKS:
            env = {**os.environ, "HUMANDESK_PORT": str(topo.ports[name])}
            assert subprocess.run(check, env=env, timeout=30).returncode == 0
        dead = {**os.environ, "HUMANDESK_PORT": str(free_port())}
        assert subprocess.run(check, env=dead, capture_output=True, timeout=30).returncode != 0

        # Redis took the redis service's persistence settings.
        import redis

        client = redis.Redis(host=HOST, port=topo.ports["redis"])
        try:
            assert client.config_get("appendonly") == {"appendonly": "yes"}
            assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
            assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        finally:
            client.close()

        # An agent account, as `docker compose run --rm desk1 humandesk agent add ...`.
        added = add_agent(topo.desk_env["desk1"], "ada", "correct horse battery")
        assert added.returncode == 0, added.stderr

        asyncio.run(call_through_proxy(topo))

        # A rolling restart behind the proxy: each server in turn gets SIGTERM, drains and
        # exits 0, and is started again; the waiting visitor, wherever its socket is, is
        # moved with 1012, reconnects through nginx to a server still running and resumes
        # its place.
        asyncio.run(rolling_restart_through_proxy(topo))

        # The desk took the agent's address from the proxy's X-Forwarded-For.
        audit = run_humandesk("audit", "--json", env=topo.desk_env["desk1"])
        assert audit.returncode == 0, audit.stderr
        logins = [e for e in map(json.loads, audit.stdout.splitlines()) if e["action"] == "login"]
        assert [e["address"] for e in logins] == [AGENT_ADDRESS], audit.stdout

        # nginx writes a WebSocket's line when it closes.
        access_log = topo.workdir / "access.log"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            upstreams(access_log, "/ws/visitor") and upstreams(access_log, "/ws/agent")
        ):
            time.sleep(0.1)
        # The call's visitor closed first; the rolling restart's sockets come after.
        visitor_server = upstreams(access_log, "/ws/visitor")[0]
        (agent_server,) = upstreams(access_log, "/ws/agent")
        # Least connections put the two sockets on different servers: the call went
        # through Redis from one process to another, with no sticky session.
        assert visitor_server != agent_server
        desks = {f"{HOST}:{topo.ports[name]}" for name in DESKS}
        assert {visitor_server, agent_server} <= desks
        for name in DESKS:
            assert " ERROR " not in topo.output(name), topo.output(name)[-3000:]


async def call_through_proxy(topo: Topology) -> None:
    """An agent signs in and goes Available, a visitor joins, the call starts and its
    signaling and TURN credentials work: everything through the proxy's TLS port."""
    assert topo.ca is not None
    tls = ssl.create_default_context(cafile=str(topo.ca))
    origin = topo.origin
    jar = aiohttp.CookieJar(unsafe=True)  # the desk's address is an IP address here
    # The agent comes from 127.0.0.2 (Linux routes 127.0.0.0/8 to lo): nginx connects to
    # the desk from 127.0.0.1, so only X-Forwarded-For, from a trusted proxy, names it.
    connector = aiohttp.TCPConnector(local_addr=(AGENT_ADDRESS, 0))
    async with aiohttp.ClientSession(cookie_jar=jar, connector=connector) as agent_http:
        # Plain HTTP only redirects to HTTPS.
        resp = await agent_http.get(
            f"http://{HOST}:{topo.ports['proxy_http']}/agent", allow_redirects=False
        )
        assert resp.status == 301 and resp.headers["Location"].startswith("https://")
        ready = await agent_http.get(f"{origin}/readyz", ssl=tls)
        assert ready.status == 200 and (await ready.json())["status"] == "ready"
        login = await agent_http.post(
            f"{origin}/api/login",
            json={"username": "ada", "password": "correct horse battery"},
            headers={"Origin": origin},
            ssl=tls,
        )
        assert login.status == 200, await login.text()
        # The session cookie is Secure: the desk knows it is served over HTTPS.
        assert "secure" in login.headers["Set-Cookie"].lower()
        agent = await Peer.welcomed(
            await agent_http.ws_connect(f"{origin}/ws/agent", origin=origin, ssl=tls)
        )
        await agent.send({"type": "status", "status": "available"})
        await agent.expect("status", status="available")

        async with aiohttp.ClientSession() as visitor_http:
            visitor = await Peer.welcomed(
                await visitor_http.ws_connect(f"{origin}/ws/visitor", origin=origin, ssl=tls)
            )
            await visitor.send({"type": "join", "queue": "support", "name": "Grace"})
            offer = await agent.expect("offer")
            assert offer["visitor"]["name"] == "Grace"
            await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
            started = await agent.expect("call_started")
            assert (await visitor.expect("call_started"))["call_id"] == started["call_id"]
            description = {"type": "offer", "sdp": "v=0\r\n"}
            await agent.send(
                {"type": "signal", "call_id": started["call_id"], "description": description}
            )
            assert (await visitor.expect("signal"))["description"] == description

            # The call's TURN credentials work on the compose file's coturn; others do not.
            (turn,) = [s for s in started["ice_servers"] if "username" in s]
            port = topo.ports["coturn"]
            assert turn["urls"][0].startswith(f"turn:{HOST}:{port}"), turn["urls"]
            assert await turn_allocates(HOST, port, turn["username"], turn["credential"])
            assert not await turn_allocates(HOST, port, turn["username"], "not-the-password")

            await agent.send({"type": "hangup", "call_id": started["call_id"]})
            await visitor.expect("call_ended")
            await visitor.ws.close()
        await agent.ws.close()


def restart(topo: Topology, name: str) -> int:
    """SIGTERM to one desk server; once it has exited (its code returned), the same command
    again, until it is ready."""
    proc = topo.procs[name]
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(60)
    topo.start(name, topo.desk_command, topo.desk_env[name])
    wait_ready(topo, name)
    return code


async def rolling_restart_through_proxy(topo: Topology) -> None:
    assert topo.ca is not None
    tls = ssl.create_default_context(cafile=str(topo.ca))
    origin = topo.origin
    async with aiohttp.ClientSession() as http:
        visitor = await Peer.welcomed(
            await http.ws_connect(f"{origin}/ws/visitor", origin=origin, ssl=tls)
        )
        await visitor.send({"type": "join", "queue": "support", "name": "Rolling"})
        queued = await visitor.expect("queued")
        moves = 0
        for name in DESKS:
            stopping = asyncio.create_task(asyncio.to_thread(restart, topo, name))
            # The visitor's socket is closed with 1012 if it was on this server.
            while not stopping.done():
                try:
                    msg = await visitor.ws.receive(timeout=0.2)
                except TimeoutError:
                    continue
                if msg.type is aiohttp.WSMsgType.TEXT:
                    visitor.seen.append(json.loads(msg.data))
                    continue
                assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1012, msg
                moves += 1
                visitor = await Peer.welcomed(
                    await http.ws_connect(f"{origin}/ws/visitor", origin=origin, ssl=tls)
                )
                await visitor.send({"type": "resume", "ticket": queued["ticket"]})
                again = await visitor.expect("queued")
                assert again["visitor_id"] == queued["visitor_id"]
                assert again["position"] == queued["position"]
            assert await stopping == 0, f"{name} did not exit 0:\n{topo.output(name)[-3000:]}"
        # Its socket was on one of the three (and may have moved to one restarted later):
        # it moved at least once, kept its place every time, and is still served.
        assert moves >= 1
        await visitor.send({"type": "ping"})
        await visitor.expect("pong")
        await visitor.send({"type": "leave"})
        await visitor.expect("left")
