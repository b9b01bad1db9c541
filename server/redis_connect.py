"""The desk's Redis client, for one Redis server or a Redis Cluster / Valkey Cluster.

``HUMANDESK_REDIS_MODE=single`` (the default) talks to one server through a blocking pool;
``cluster`` gives redis-py's cluster client the URL of any node, and it finds the others.
A desk is one hash slot (queue/keys.py), so it runs on one shard; several desks spread over
the shards. What a cluster needs from its servers is checked once at start
(:func:`check_cluster`): sharded pub/sub (Redis 7.0+, Valkey) and, when the desk waits for a
replica after each change (``HUMANDESK_REDIS_WAIT_MS``), a replica of the desk's primary.
See docs/cluster.md.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from humandesk.queue.connection import RedisClient
from humandesk.queue.keys import DeskKeys

__all__ = ["MODES", "ClusterRefused", "check_cluster", "connect", "drop_idle_connections"]

MODES = ("single", "cluster")
#: How many times a cluster call that lost its node is tried again after asking the cluster
#: where the slot lives (see :func:`connect`).
CLUSTER_RETRIES = 2
#: The oldest server with sharded pub/sub (SPUBLISH, SSUBSCRIBE).
MIN_CLUSTER_VERSION = (7, 0)


class ClusterRefused(Exception):
    """The cluster cannot run the desk as configured (the message says why, in one line)."""


def connect(url: str, mode: str, *, max_connections: int = 64) -> RedisClient:
    """The client of a desk. A connect that takes seconds means a hung server (a dead one
    refuses at once): give up on it."""
    if mode == "cluster":
        # Per node: a burst of calls waits for a free connection instead of failing. A call
        # that finds its node gone asks the cluster again a few times (CLUSTER_RETRIES), not
        # redis-py's ten: while a failover runs, the desk answers `unavailable` and the
        # pages send again, rather than holding every request (and, for a pipeline, closing
        # every connection and sleeping between attempts).
        return RedisCluster.from_url(
            url,
            max_connections=max_connections,
            socket_connect_timeout=5,
            socket_timeout=10,
            retry=Retry(NoBackoff(), CLUSTER_RETRIES),
        )
    # A blocking pool: a burst of Redis calls (thousands of sockets closing at once) waits
    # for a connection instead of failing with MaxConnectionsError.
    return Redis(
        connection_pool=BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=10,
            health_check_interval=15,
            socket_connect_timeout=5,
        )
    )


def drop_idle_connections(redis: RedisClient) -> Awaitable[Any]:
    """Closes the pooled connections no request holds (at the start of an outage: each
    would fail once more after Redis is back)."""
    if isinstance(redis, RedisCluster):
        return _drop_cluster_idle(redis)
    return redis.connection_pool.disconnect(inuse_connections=False)


async def _drop_cluster_idle(redis: RedisCluster) -> None:
    for node in redis.get_nodes():
        with contextlib.suppress(Exception):
            await node.disconnect_free_connections()


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


async def check_cluster(redis: RedisCluster, desk: str, replica_wait_ms: int) -> str:
    """Checks that the cluster can run ``desk``; returns where its slot lives, for the log.

    Raises :class:`ClusterRefused` for a server without sharded pub/sub, or for a desk
    whose primary has no replica while ``replica_wait_ms`` asks to wait for one."""
    await redis.initialize()
    key = DeskKeys(desk).prefix
    slot = redis.keyslot(key)
    node = redis.get_node_from_key(key)
    if node is None:
        raise ClusterRefused(f"no node of the cluster serves slot {slot} (desk {desk!r})")
    info = await redis.info("server", target_nodes=node)
    version = str(info.get("valkey_version") or info.get("redis_version") or "0")
    server = "Valkey" if info.get("valkey_version") else "Redis"
    if _version(version) < MIN_CLUSTER_VERSION:
        raise ClusterRefused(
            f"HUMANDESK_REDIS_MODE=cluster needs sharded pub/sub (Redis 7.0+ or Valkey); "
            f"node {node.name} runs {server} {version}"
        )
    replication = await redis.info("replication", target_nodes=node)
    replicas = int(replication.get("connected_slaves", 0))
    if replica_wait_ms and not replicas:
        raise ClusterRefused(
            f"desk {desk!r} lives on node {node.name}, which has no replica, and "
            f"HUMANDESK_REDIS_WAIT_MS={replica_wait_ms} waits for one after every change; "
            "add a replica, or set HUMANDESK_REDIS_WAIT_MS=0 (a crash of that node may "
            "then lose its last changes)"
        )
    return f"slot {slot} on {server} {version} node {node.name} ({replicas} replica(s))"
