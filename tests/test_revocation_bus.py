"""Tombstones on both buses: what a revocation blocks, what it leaves alone, and for how long."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from redis import Redis

from vc_plugin.adapters.bus import Bus, LocalBus, RedisBus


@pytest.fixture(params=["local", "redis"])
def bus(request, redis_url) -> Iterator[Bus]:
    if request.param == "local":
        yield LocalBus()
        return
    bus = RedisBus(Redis.from_url(redis_url), prefix=f"vc:test:{uuid.uuid4().hex[:8]}:")
    yield bus
    bus.close()


def revoke(bus: Bus, scopes: list[str], at: float, reason: str = "cancelled") -> None:
    bus.revoke(scopes, at, reason, keep_seconds=60, channel="revoke", message="{}")


def test_a_tombstone_blocks_claims_older_than_itself_and_nothing_else(bus):
    heard: list[str] = []
    bus.subscribe("m:a:x", heard.append)
    assert bus.publish_unless_revoked("m:a:x", "before", [("a:one", -1.0)])
    revoke(bus, ["a:one", "s:doc"], at=100.0, reason="signed_out")
    assert not bus.publish_unless_revoked("m:a:x", "after", [("o:1", -1.0), ("a:one", -1.0)])
    assert bus.publish_unless_revoked("m:a:x", "other room", [("a:two", -1.0)])
    # Sessions: begun before the revocation are hit, at the same instant or later are not.
    assert bus.revoked_reason([("s:doc", 99.5)]) == "signed_out"
    assert bus.revoked_reason([("s:doc", 100.0)]) is None
    assert bus.revoked_reason([("s:doc", 100.5)]) is None
    assert bus.revoked_reason([]) is None
    deadline = time.monotonic() + 5  # Redis delivers on its listener thread
    while len(heard) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    bus.unsubscribe("m:a:x", heard.append)
    assert heard == ["before", "other room"]


def test_the_later_revocation_wins_and_an_earlier_one_does_not_undo_it(bus):
    revoke(bus, ["s:doc"], at=200.0, reason="signed_out")
    revoke(bus, ["s:doc"], at=150.0, reason="practitioner_removed")
    assert bus.revoked_reason([("s:doc", 180.0)]) == "signed_out"
    revoke(bus, ["s:doc"], at=300.0, reason="practitioner_removed")
    assert bus.revoked_reason([("s:doc", 250.0)]) == "practitioner_removed"


def test_the_in_process_bus_delivers_the_revocation_at_once():
    """Embedded mode; across processes on Redis: tests/test_revocation.py."""
    bus, heard = LocalBus(), []
    bus.subscribe("revoke", heard.append)
    revoke(bus, ["a:one"], at=1.0)
    assert heard == ["{}"]


def test_redis_tombstones_expire_when_told(redis_url):
    prefix = f"vc:test:{uuid.uuid4().hex[:8]}:"
    redis = Redis.from_url(redis_url)
    bus = RedisBus(redis, prefix=prefix)
    try:
        bus.revoke(["a:one"], 1.0, "deleted", keep_seconds=3600, channel="revoke", message="{}")
        assert 3590 < redis.ttl(f"{prefix}revoked:a:one") <= 3600
        assert redis.get(f"{prefix}revoked:a:one") == b"1.0 deleted"  # ids and a time: nothing personal
    finally:
        bus.close()
        redis.delete(f"{prefix}revoked:a:one")
