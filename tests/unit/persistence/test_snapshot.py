"""The snapshot format: round trips of every type, and damage found with its offset."""

from __future__ import annotations

import io
import random
from collections import deque
from typing import Any

import pytest

from ackdb.keyspace.db import Database
from ackdb.keyspace.zset import ZSet
from ackdb.persistence import dataset
from ackdb.persistence import snapshot as snap


class _Owner:
    role_replica = False
    applying = False

    def now_ms(self) -> int:
        return 1_000_000

    def on_expired(self, db: Any, key: bytes) -> None:
        pass

    def on_key_ready(self, db: Any, key: bytes) -> None:
        pass

    def on_key_created(self, db: Any, key: bytes) -> None:
        pass

    def on_watched_touched(self, *a: Any) -> None:
        pass


def _dbs(n: int = 3) -> list[Database]:
    return [Database(i, _Owner()) for i in range(n)]


def _populate(dbs: list[Database], rng: random.Random, keys: int) -> None:
    for i in range(keys):
        db = dbs[rng.randrange(len(dbs))]
        k = b"k%d" % i
        kind = rng.randrange(5)
        if kind == 0:
            v: Any = rng.randbytes(rng.randrange(0, 40))
        elif kind == 1:
            v = {b"f%d" % j: rng.randbytes(5) for j in range(rng.randrange(1, 20))}
        elif kind == 2:
            v = deque(rng.randbytes(3) for _ in range(rng.randrange(1, 20)))
        elif kind == 3:
            v = {rng.randbytes(4) for _ in range(rng.randrange(1, 20))}
        else:
            v = ZSet((b"m%d" % j, rng.choice([rng.random(), float("inf"), -float("inf"), -3.5]))
                     for j in range(rng.randrange(1, 20)))  # fmt: skip
        db.add_new(k, v)
        if rng.random() < 0.3:
            db.set_expire(k, 4_000_000_000_000 + rng.randrange(10**6))


def _snapshot_bytes(dbs: list[Database], meta: dict[str, Any] | None = None) -> bytes:
    out = io.BytesIO()
    dataset.write_snapshot(out, dbs, meta or {"replid": "a" * 40}, now_ms=1_000_000)
    return out.getvalue()


def _load(data: bytes, n: int = 3) -> tuple[list[Database], dict[str, Any]]:
    dbs = _dbs(n)
    target = dataset.DbTarget(dbs, now_ms=1_000_000)
    meta = snap.load(io.BytesIO(data), target)
    target.finish()
    return dbs, meta


def _contents(dbs: list[Database]) -> list[dict[bytes, Any]]:
    out = []
    for db in dbs:
        d = {}
        for k, v in db.data.items():
            if isinstance(v, ZSet):
                v = sorted(v)
            d[k] = (v, db.expires.get(k))
        out.append(d)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_every_type(seed: int) -> None:
    rng = random.Random(seed)
    dbs = _dbs()
    _populate(dbs, rng, 3000)  # several frames and batches
    loaded, meta = _load(_snapshot_bytes(dbs, {"replid": "b" * 40, "repl_offset": 77}))
    assert _contents(loaded) == _contents(dbs)
    assert meta["replid"] == "b" * 40 and meta["repl_offset"] == 77
    for db in loaded:  # SCAN order and the expiry heap are usable after a load
        cursor, seen = 0, set()
        while True:
            cursor, keys = db.scan(cursor, 100)
            seen.update(keys)
            if cursor == 0:
                break
        assert seen == set(db.data)


def test_expired_keys_are_dropped_at_load_and_skipped_at_save() -> None:
    dbs = _dbs(1)
    dbs[0].add_new(b"old", b"v")
    dbs[0].set_expire(b"old", 10)  # long past at now_ms=1_000_000
    dbs[0].add_new(b"new", b"v")
    loaded, _ = _load(_snapshot_bytes(dbs), 1)
    assert set(loaded[0].data) == {b"new"}


def test_empty_dataset() -> None:
    loaded, meta = _load(_snapshot_bytes(_dbs()))
    assert all(not db.data for db in loaded)
    assert meta["keys_at_start"] == 0


def test_every_single_byte_flip_is_detected() -> None:
    dbs = _dbs(1)
    _populate(dbs, random.Random(7), 50)
    data = _snapshot_bytes(dbs)
    for pos in range(len(data)):
        bad = bytearray(data)
        bad[pos] ^= 0x40
        with pytest.raises(snap.SnapshotError):
            _load(bytes(bad), 1)


@pytest.mark.parametrize("cut", [1, 5, 11, 12, 13, 19, 20, -1, -7])
def test_truncation_is_detected(cut: int) -> None:
    dbs = _dbs(1)
    _populate(dbs, random.Random(3), 50)
    data = _snapshot_bytes(dbs)
    with pytest.raises(snap.SnapshotError, match="truncated|magic|checksum|no end"):
        _load(data[:cut], 1)


def test_error_names_the_offset_of_the_damaged_frame() -> None:
    dbs = _dbs(1)
    _populate(dbs, random.Random(1), 20000)  # several 1 MiB frames
    data = _snapshot_bytes(dbs)
    bad = bytearray(data)
    bad[len(data) - 100] ^= 1
    with pytest.raises(snap.SnapshotError) as e:
        _load(bytes(bad), 1)
    assert 0 < e.value.offset < len(data) - 100
    assert "checksum" in str(e.value)


def test_unknown_version_is_refused_clearly() -> None:
    data = bytearray(_snapshot_bytes(_dbs(1)))
    data[8:12] = (99).to_bytes(4, "big")
    with pytest.raises(snap.SnapshotError, match="version 99 is not supported"):
        _load(bytes(data), 1)


def test_more_databases_than_configured_is_a_clear_error() -> None:
    dbs = _dbs(3)
    dbs[2].add_new(b"k", b"v")
    data = _snapshot_bytes(dbs)
    with pytest.raises(snap.SnapshotError, match="database 2"):
        _load(data, 1)


def test_resp_base_replays_to_the_same_dataset() -> None:
    from conftest import Harness

    rng = random.Random(11)
    src = _dbs(2)
    _populate(src, rng, 300)
    out = io.BytesIO()
    dataset.write_resp(out, src, now_ms=1_000_000)
    from ackdb.persistence.aofread import read_all

    txs, reader = read_all(io.BytesIO(out.getvalue()), len(out.getvalue()))
    assert reader.truncated_bytes == 0
    h = Harness()
    c = h.client()
    for cmds in txs:
        for argv in cmds:
            h.server.process(c, argv)
    for i, db in enumerate(src):
        got = h.server.dbs[i]
        assert set(got.data) == set(db.data)
        for k, v in db.data.items():
            g = got.data[k]
            assert (sorted(g) if isinstance(g, ZSet) else g) == (
                sorted(v) if isinstance(v, ZSet) else v
            )
            assert got.expires.get(k) == db.expires.get(k)
