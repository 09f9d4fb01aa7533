"""Client-level differential test of the bitmap, HyperLogLog and geo families: redis-py's
helpers (``setbit``, ``bitfield`` / ``bitfield_ro`` builders, ``pfadd`` / ``pfcount`` /
``pfmerge``, ``geoadd``, ``geosearch`` with its keyword arguments, ``georadius`` ...)
against one redis-server (the reference) and one ackdb, under RESP2 and RESP3 with
``decode_responses`` off and on; every result (or error) must be equal. The tape and its
rules are test_clients_vs_redis.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from test_clients_vs_redis import CLIENT_MODES, MODE_IDS, Tape, run_both

from conftest import REDIS_SERVER, server_pair

pytest.importorskip("redis")

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

SICILY = [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"]
MORE = [12.758489, 38.788135, "edge1", 17.241510, 38.788135, "edge2", 2.3522, 48.8566, "Paris"]


def _raw(t: Tape, key: str) -> None:
    """A binary value, read as bytes whatever the client decodes."""
    t.note(f"raw {key}", _get_bytes(t, key))


def _get_bytes(t: Tape, key: str) -> object:
    with t.r.pipeline(transaction=False) as p:
        p.execute_command("GET", key, **{"NEVER_DECODE": True})
        return p.execute()[0]


def script_bitmaps(t: Tape) -> None:
    t.setbit("b", 7, 1)
    t.setbit("b", 7, 1)
    t.setbit("b", 100, 1)
    t.getbit("b", 7)
    t.getbit("b", 1000)
    t.getbit("missing", 3)
    t.bitcount("b")
    t.bitcount("b", 0, 0)
    t.bitcount("b", 0, 10, "BIT")
    t.bitcount("b", -2, -1, "BYTE")
    t.bitpos("b", 1)
    t.bitpos("b", 0)
    t.bitpos("b", 1, 1)
    t.bitpos("b", 1, 2, -1, "BIT")
    t.bitpos("missing", 0)
    t.set("s", "foobar")
    t.bitop("AND", "dst", "b", "s")
    t.bitop("OR", "dst", "b", "s", "missing")
    t.bitop("XOR", "dst", "s", "s")
    t.bitop("NOT", "dst", "s")
    _raw(t, "dst")
    t.bitop("NOT", "dst", "s", "b")
    t.bitop("AND", "dst", "missing")
    t.exists("dst")
    t.setbit("b", -1, 1)
    t.setbit("b", 1, 2)
    t.setbit("b", 2**32 * 8, 1)
    t.lpush("l", "x")
    t.setbit("l", 0, 1)
    t.bitcount("l")


def _bitfield(t: Tape, label: str, build: Callable[[object], object]) -> None:
    t.record(label, lambda: build(t.r.bitfield("bf")))


def script_bitfields(t: Tape) -> None:
    _bitfield(t, "set/get", lambda f: f.set("u8", 0, 255).get("u8", 0).get("i8", 0).execute())
    _bitfield(t, "incr wrap", lambda f: f.incrby("u2", 100, 1).incrby("u2", 100, 3).execute())
    _bitfield(t, "sat", lambda f: f.overflow("SAT").incrby("i8", "#1", 200).execute())
    _bitfield(t, "fail", lambda f: f.overflow("FAIL").incrby("u4", 4, 20).execute())
    _bitfield(t, "i64", lambda f: f.set("i64", 0, -(2**63)).incrby("i64", 0, -1).execute())
    _bitfield(t, "bad type", lambda f: f.get("u64", 0).execute())
    _bitfield(t, "bad overflow", lambda f: f.overflow("BOUNCE").get("u8", 0).execute())
    t.bitfield_ro("bf", "u8", 0, [("i4", 4), ("u16", 8)])
    t.bitfield_ro("missing", "u8", 0)
    t.execute_command("BITFIELD_RO", "bf", "SET", "u8", 0, 1)
    _raw(t, "bf")


def script_hll(t: Tape) -> None:
    t.pfadd("h1", "a", "b", "c", "d")
    t.pfadd("h1", "a")
    t.pfadd("h1")
    t.pfadd("h2", *[f"e{i}" for i in range(300)])
    t.pfcount("h1")
    t.pfcount("h1")
    t.pfcount("h2")
    t.pfcount("h1", "h2", "missing")
    t.pfmerge("h3", "h1", "h2")
    t.pfcount("h3")
    _raw(t, "h1")
    _raw(t, "h3")
    t.set("plain", "not an hll")
    t.pfadd("plain", "x")
    t.pfcount("plain")
    t.execute_command("PFDEBUG", "ENCODING", "h1")
    t.execute_command("PFDEBUG", "DECODE", "h1")
    t.execute_command("PFDEBUG", "TODENSE", "h1")
    t.execute_command("PFDEBUG", "ENCODING", "h1")
    t.pfcount("h1")
    t.pfadd("big", *[f"x{i}" for i in range(3000)])
    t.execute_command("PFDEBUG", "ENCODING", "big")
    t.pfcount("big")
    t.execute_command("PFSELFTEST")


def script_geo(t: Tape) -> None:
    t.geoadd("Sicily", SICILY)
    t.geoadd("Sicily", MORE, ch=True)
    t.geoadd("Sicily", [13.0, 38.0, "Palermo"], nx=True)
    t.geoadd("Sicily", [13.0, 38.0, "Newcomer"], xx=True)
    t.geoadd("Sicily", [200, 38.0, "bad"])
    t.zscore("Sicily", "Palermo")
    t.geodist("Sicily", "Palermo", "Catania")
    t.geodist("Sicily", "Palermo", "Catania", "km")
    t.geodist("Sicily", "Palermo", "nobody")
    t.geohash("Sicily", "Palermo", "Catania", "nobody")
    t.geopos("Sicily", "Palermo", "nobody", "Paris")
    t.georadius("Sicily", 15, 37, 200, "km", withdist=True, withcoord=True, sort="ASC")
    t.georadius("Sicily", 15, 37, 200, "km", withhash=True, count=1)
    t.georadius("Sicily", 15, 37, 2000, "km", count=2, any=True)
    t.georadiusbymember("Sicily", "Palermo", 300, "km", withdist=True, sort="DESC")
    t.georadiusbymember("Sicily", "nobody", 300, "km")
    t.geosearch("Sicily", member="Palermo", radius=300, unit="km", withdist=True, sort="ASC")
    t.geosearch(
        "Sicily", longitude=15, latitude=37, width=400, height=400, unit="km", withcoord=True
    )
    t.geosearch("Sicily", longitude=15, latitude=37, radius=5, unit="km")
    t.geosearchstore("dst", "Sicily", longitude=15, latitude=37, radius=300, unit="km")
    t.zrange("dst", 0, -1)
    t.geosearchstore(
        "dst", "Sicily", member="Palermo", radius=300, unit="km", storedist=True, count=2
    )
    t.zrange("dst", 0, -1)
    t.georadius("Sicily", 15, 37, 200, "km", store="dst2")
    t.zrange("dst2", 0, -1)
    t.georadius("missing", 15, 37, 200, "km", store="dst2")
    t.exists("dst2")
    t.geosearch("Sicily", member="Palermo", radius=-1, unit="km")
    t.set("str", "v")
    t.geopos("str", "a")
    t.geosearch("str", longitude=1, latitude=2, radius=1, unit="m")


SCRIPTS = {
    "bitmaps": script_bitmaps,
    "bitfields": script_bitfields,
    "hll": script_hll,
    "geo": script_geo,
}


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    with server_pair(tmp_path_factory.mktemp("clients-bits-geo-hll")) as pair:
        yield pair


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("protocol", "decode"), CLIENT_MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name", list(SCRIPTS))
def test_redis_py_matches_redis(
    ports: tuple[int, int], name: str, protocol: int, decode: bool
) -> None:
    run_both(ports, SCRIPTS[name], protocol, decode)
