"""End to end: ACL users of a sharded database at its endpoint (issue 17 item 4): real
shard processes behind ``ackdb proxy``; the users are stored with the database and the
endpoint checks them (proxy/access.py), so a shard never sees them."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from ackdb.acl import normalize_user_rule
from conftest import no_retry
from proxy_support import ShardedDb

pytestmark = pytest.mark.e2e


def test_acl_users_at_the_endpoint(tmp_path: Path) -> None:
    users = (
        normalize_user_rule("reader on >rpw ~* +@read +@connection +acl|whoami"),
        normalize_user_rule("writer on >wpw ~app:* +@all -@dangerous"),
    )
    with ShardedDb(tmp_path / "acl", shards=2, password="dbpw", acl_users=users) as d:
        admin = redis.Redis(port=d.port, password="dbpw", socket_timeout=10)
        admin.mset({"app:1": "a", "other": "b"})
        reader = redis.Redis(port=d.port, username="reader", password="rpw", socket_timeout=10)
        assert reader.get("app:1") == b"a"
        assert reader.execute_command("ACL", "WHOAMI") == b"reader"
        with pytest.raises(redis.exceptions.NoPermissionError, match="'set' command"):
            reader.set("app:1", "x")
        writer = redis.Redis(port=d.port, username="writer", password="wpw", socket_timeout=10)
        assert writer.set("app:2", "v")
        with pytest.raises(redis.exceptions.NoPermissionError, match="one of the keys"):
            writer.get("other")
        with pytest.raises(redis.exceptions.NoPermissionError, match="'flushall' command"):
            writer.flushall()
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(
                port=d.port, username="writer", password="bad", socket_timeout=10, retry=no_retry()
            ).ping()
        assert admin.get("app:2") == b"v"
        for c in (admin, reader, writer):
            c.close()
