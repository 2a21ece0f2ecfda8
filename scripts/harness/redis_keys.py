"""Delete one run's Redis keys by prefix: SCAN and DEL, never FLUSHDB (the server is shared)."""

from __future__ import annotations

from typing import Any

BATCH = 1000


def patterns(prefix: str) -> list[str]:
    """The keys of a key prefix: the cache's and flags' (`<prefix>:…`) and python-redis-lock's around them."""
    return [f"{prefix}:*", f"lock:{prefix}:*", f"lock-signal:{prefix}:*"]


def delete_keys(redis: Any, prefix: str) -> int:
    """Delete every key of `prefix` from `redis` (a URL or a client); return how many went."""
    if isinstance(redis, str):
        from redis import Redis

        client = Redis.from_url(redis, socket_timeout=5, socket_connect_timeout=5)
        try:
            return delete_keys(client, prefix)
        finally:
            client.close()
    deleted = 0
    for pattern in patterns(prefix):
        batch = []
        for key in redis.scan_iter(match=pattern, count=BATCH):
            batch.append(key)
            if len(batch) >= BATCH:
                deleted += redis.delete(*batch)
                batch = []
        if batch:
            deleted += redis.delete(*batch)
    return deleted


def server_version(url: str) -> str:
    from redis import Redis

    client = Redis.from_url(url, socket_timeout=5)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()
