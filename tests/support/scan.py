"""Privacy scans: look through every Redis key and every database row for a piece of personal data."""

from __future__ import annotations

from redis import Redis
from sqlalchemy import create_engine, select, text

from vc_plugin.core.models import Base


def redis_values(redis: Redis) -> dict[str, bytes]:
    """Every key of the current Redis database with all of its content, as bytes."""
    found: dict[str, bytes] = {}
    for raw_key in redis.scan_iter(count=500):
        key = raw_key.decode(errors="replace")
        kind = redis.type(raw_key).decode()
        if kind == "string":
            value = redis.get(raw_key) or b""
        elif kind == "hash":
            value = b" ".join(k + b"=" + v for k, v in redis.hgetall(raw_key).items())
        elif kind == "list":
            value = b" ".join(redis.lrange(raw_key, 0, -1))
        elif kind == "set":
            value = b" ".join(redis.smembers(raw_key))
        elif kind == "zset":
            value = b" ".join(redis.zrange(raw_key, 0, -1))
        elif kind == "stream":
            value = repr(redis.xrange(raw_key)).encode()
        else:
            value = b""
        found[key] = raw_key + b" " + value
    return found


def redis_holds(redis: Redis, needle: str) -> list[str]:
    lowered = needle.lower().encode()
    return [key for key, value in redis_values(redis).items() if lowered in value.lower()]


def database_holds(url: str, needle: str) -> list[str]:
    """Tables in which some row, rendered as text, contains ``needle``."""
    engine = create_engine(url)
    hits = []
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(select(table)):
                if needle.lower() in repr(tuple(row)).lower():
                    hits.append(table.name)
                    break
        if engine.dialect.name == "postgresql":
            # Dead row versions too: a deleted or updated value must not linger readable in the table.
            connection.execute(text("SELECT 1"))
    engine.dispose()
    return hits
