"""The Redis cache backend reuses one client per connection pool (webapp/redis_cache.py)."""

from __future__ import annotations

import pytest
import redis

from webapp.redis_cache import RedisCache

URL = "redis://127.0.0.1:6379/9"


def test_it_reuses_one_client_per_pool_without_connecting():
    cache = RedisCache(URL, {})
    client = cache._cache.get_client("k", write=True)
    assert isinstance(client, redis.Redis)
    assert cache._cache.get_client("other") is client
    assert cache._cache.get_client("k", write=True).connection_pool is client.connection_pool


def test_it_keeps_a_client_per_server():
    cache = RedisCache("redis://127.0.0.1:6379/9,redis://127.0.0.1:6379/8", {})
    writer = cache._cache.get_client(write=True)
    reader = cache._cache.get_client()  # reads go to the other servers
    assert writer is not reader
    assert writer.connection_pool.connection_kwargs["db"] == 9
    assert reader.connection_pool.connection_kwargs["db"] == 8


@pytest.mark.integration
def test_it_stores_and_reads_through_the_shared_client():
    cache = RedisCache(URL, {})
    try:
        cache.set("ionsieve-test-key", {"figure": [1, 2]}, 30)
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    assert cache.get("ionsieve-test-key") == {"figure": [1, 2]}
    cache.delete("ionsieve-test-key")
    assert cache.get("ionsieve-test-key") is None
