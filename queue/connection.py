"""Which kind of Redis a desk runs on, and the one difference the queue must mind: publishing.

On one Redis server (a primary, with or without replicas) messages go out with classic
``PUBLISH``. On a Redis Cluster or Valkey Cluster classic pub/sub is broadcast to every node
of the cluster, so the desk publishes with sharded pub/sub (``SPUBLISH``, Redis 7.0+ and
Valkey) instead: every channel of a desk carries the desk's hash tag (queue/keys.py), so its
messages stay on the desk's shard, however many shards the cluster has. The command is chosen
once, from the client's kind, and given to the scripts through their generated prelude.
"""

from __future__ import annotations

from typing import Literal, TypeAlias, TypeGuard

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ClusterDownError, SlotNotCoveredError, TryAgainError

__all__ = [
    "CLUSTER_UNAVAILABLE",
    "PublishCommand",
    "RedisClient",
    "is_cluster",
    "publish",
    "publish_command",
]

#: A cluster's answers that mean "not now", as a refused connection does on one server: no
#: primary for the slot yet during a failover (CLUSTERDOWN), a slot being moved (TRYAGAIN),
#: a slot no node is known to serve. Two of them are error replies (ResponseError): the
#: queue client lets them through as they are, never as a script's refusal.
CLUSTER_UNAVAILABLE: tuple[type[Exception], ...] = (
    ClusterDownError,
    TryAgainError,
    SlotNotCoveredError,
)

#: The client a desk is given: redis-py's for one server, or its cluster client.
RedisClient: TypeAlias = Redis | RedisCluster
PublishCommand = Literal["PUBLISH", "SPUBLISH"]


def is_cluster(redis: RedisClient) -> TypeGuard[RedisCluster]:
    return isinstance(redis, RedisCluster)


def publish_command(redis: RedisClient) -> PublishCommand:
    """``SPUBLISH`` on a cluster (the message stays on its channel's shard), else ``PUBLISH``."""
    return "SPUBLISH" if is_cluster(redis) else "PUBLISH"


async def publish(redis: RedisClient, channel: str, message: str) -> int:
    """Publishes ``message`` on ``channel`` with the command of the client's kind; returns
    how many subscribed connections it reached."""
    if is_cluster(redis):
        return int(await redis.spublish(channel, message))
    return int(await redis.publish(channel, message))
