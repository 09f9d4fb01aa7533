"""Differential test of the geo family: seeded random command sequences against one
redis-server (the reference) and one ackdb, every reply compared exactly — so the
geohash scores (ZSCORE), the GEOPOS texts, the GEODIST and WITHDIST texts, GEOHASH
strings, the members a search finds and their order match byte for byte.

Covers GEOADD (NX, XX, CH, bad coordinates, bad arity), GEODIST (units), GEOHASH, GEOPOS,
GEOSEARCH (FROMMEMBER / FROMLONLAT, BYRADIUS / BYBOX, ASC / DESC, COUNT [ANY],
WITHCOORD / WITHDIST / WITHHASH), GEOSEARCHSTORE (STOREDIST), GEORADIUS and
GEORADIUSBYMEMBER (STORE / STOREDIST) and their _RO forms, their argument errors, wrong
types and missing keys; points clustered in one city, spread over a continent, and near
the poles and the antimeridian; radii from meters to thousands of kilometers. Each seed
ends comparing every key's members, DEBUG DIGEST-VALUE (the scores: STOREDIST stores
doubles, which Redis 7.0 prints differently) and the DEBUG DIGEST.

Accepted difference: none. Points never share a position, since Redis sorts ties with
glibc's qsort (whose order for equal distances is its own).

Replay one seed:  ACKDB_DIFF_SEED=4 python -m pytest tests/compat/test_differential_geo.py
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import diff_harness as harness
import pytest

from conftest import REDIS_SERVER, server_pair

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

SEEDS = harness.seeds("ACKDB_DIFF", 30)
COMMANDS_PER_SEED = harness.commands_per_seed("ACKDB_DIFF", 200)
KEYS = [b"g1", b"g2"]
DST = [b"d1", b"d2"]
OTHER = [b"str", b"missing"]
UNITS = [b"m", b"km", b"ft", b"mi", b"KM", b"M"]
BAD = [b"x", b"nan", b"", b"1e400"]


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.members: list[bytes] = []

    def point(self) -> tuple[bytes, bytes]:
        r = self.rng
        kind = r.random()
        if kind < 0.5:  # one city
            lon, lat = 13.36 + r.uniform(-0.2, 0.2), 38.11 + r.uniform(-0.2, 0.2)
        elif kind < 0.8:  # a continent
            lon, lat = r.uniform(-10, 30), r.uniform(35, 60)
        elif kind < 0.9:  # anywhere, poles included
            lon, lat = r.uniform(-180, 180), r.uniform(-85.05, 85.05)
        else:  # the antimeridian and the edges
            lon = r.choice([-180, 180, 179.99, -179.99, 0])
            lat = r.choice([0, 85.05112878, -85.05112878, 84.9, -70, 80.5])
            lon, lat = lon + r.uniform(-0.001, 0.001), lat + r.uniform(-0.001, 0.001)
            lon, lat = max(min(lon, 180), -180), max(min(lat, 85.05112878), -85.05112878)
        return (b"%.6f" % lon, b"%.6f" % lat)

    def member(self) -> bytes:
        if not self.members or self.rng.random() < 0.1:
            return b"nobody"
        return self.rng.choice(self.members)

    def key(self) -> bytes:
        return self.rng.choice(OTHER if self.rng.random() < 0.05 else KEYS)

    def next(self) -> list[bytes]:
        r = self.rng
        kind = r.random()
        if kind < 0.3:
            return self.geoadd()
        if kind < 0.4:
            return [b"GEOPOS", self.key(), *(self.member() for _ in range(r.randrange(1, 4)))]
        if kind < 0.45:
            return [b"GEOHASH", self.key(), *(self.member() for _ in range(r.randrange(1, 4)))]
        if kind < 0.55:
            argv = [b"GEODIST", self.key(), self.member(), self.member()]
            return argv + [r.choice(UNITS + [b"yd"])] if r.random() < 0.6 else argv
        if kind < 0.8:
            return self.geosearch(r.random() < 0.3)
        return self.georadius()

    def geoadd(self) -> list[bytes]:
        r = self.rng
        argv = [b"GEOADD", self.key()]
        argv += r.sample([b"NX", b"XX", b"CH"], r.choice([0, 0, 0, 1, 1, 2]))
        for _ in range(r.randrange(1, 5)):
            name = b"m%d" % len(self.members)
            if r.random() < 0.2 and self.members:
                name = r.choice(self.members)  # moves it
            else:
                self.members.append(name)
            lon, lat = self.point()
            if r.random() < 0.03:
                lon, lat = r.choice([(b"181", lat), (lon, b"86"), (r.choice(BAD), lat)])
            argv += [lon, lat, name]
        if r.random() < 0.03:
            argv.pop()
        return argv

    def radius(self) -> list[bytes]:
        r = self.rng
        value = r.choice([b"0", b"1", b"500", b"5000", b"20", b"200", b"1000", b"7000"])
        if r.random() < 0.03:
            value = r.choice([b"-1", *BAD[:2]])
        unit = r.choice(UNITS) if r.random() < 0.97 else b"yd"
        return [value, unit]

    def options(self, store_ok: bool) -> list[bytes]:
        r = self.rng
        opts: list[bytes] = []
        for word in (b"WITHCOORD", b"WITHDIST", b"WITHHASH"):
            if r.random() < 0.3:
                opts.append(word)
        if r.random() < 0.5:
            opts.append(r.choice([b"ASC", b"DESC"]))
        if r.random() < 0.4:
            opts += [b"COUNT", r.choice([b"1", b"2", b"5", b"0", b"x", b"50"])]
            if r.random() < 0.4:
                opts.append(b"ANY")
        elif r.random() < 0.03:
            opts.append(b"ANY")
        if store_ok and r.random() < 0.3:
            opts += [r.choice([b"STORE", b"STOREDIST"]), r.choice(DST)]
        r.shuffle(opts)  # keywords and their values stay adjacent only by luck: errors too
        return opts if r.random() < 0.1 else _regroup(opts)

    def geosearch(self, store: bool) -> list[bytes]:
        r = self.rng
        argv = [b"GEOSEARCHSTORE", r.choice(DST)] if store else [b"GEOSEARCH"]
        argv.append(self.key())
        if r.random() < 0.5:
            argv += [b"FROMMEMBER", self.member()]
        else:
            argv += [b"FROMLONLAT", *self.point()]
        if r.random() < 0.5:
            argv += [b"BYRADIUS", *self.radius()]
        else:
            w, h = (r.choice([b"100", b"2000", b"400", b"0", b"10000"]) for _ in range(2))
            argv += [b"BYBOX", w, h, r.choice(UNITS)]
        opts = [o for o in self.options(False) if o not in (b"STORE", b"STOREDIST")]
        if store:
            opts = [o for o in opts if not o.startswith(b"WITH")] if r.random() < 0.9 else opts
            if r.random() < 0.3:
                opts.append(b"STOREDIST")
        if r.random() < 0.03:
            r.shuffle(argv)
        return argv + opts

    def georadius(self) -> list[bytes]:
        r = self.rng
        by_member = r.random() < 0.5
        ro = r.random() < 0.3
        name = (b"GEORADIUSBYMEMBER" if by_member else b"GEORADIUS") + (b"_RO" if ro else b"")
        argv = [name, self.key()]
        argv += [self.member()] if by_member else list(self.point())
        argv += self.radius()
        opts = self.options(not ro)
        if b"STORE" in opts or b"STOREDIST" in opts:
            opts = [o for o in opts if not o.startswith(b"WITH")] if r.random() < 0.9 else opts
        return argv + opts


def _regroup(opts: list[bytes]) -> list[bytes]:
    """Shuffled options with each keyword followed by its value again."""
    out: list[bytes] = []
    pending = [o for o in opts]
    values = {b"COUNT", b"STORE", b"STOREDIST"}
    i = 0
    while i < len(pending):
        o = pending[i]
        if o in values and i + 1 < len(pending):
            out += [o, pending[i + 1]]
            i += 2
        else:
            out.append(o)
            i += 1
    return out


class Pair(harness.Pair):
    module = "tests/compat/test_differential_geo.py"
    shown = harness.history_shown("ACKDB_DIFF", 12)

    def check(self, index: int, argv: list[bytes]) -> None:
        text = " ".join(repr(a)[2:-1] for a in argv)
        self.note(index, text)
        ref, sut = self.call(argv)
        if ref != sut:
            self.fail(index, text, ref, sut)


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    with server_pair(tmp_path_factory.mktemp("differential-geo")) as pair:
        yield pair


@pytest.mark.timeout(harness.SEED_TIMEOUT_S)
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_seed(ports: tuple[int, int], seed: int) -> None:
    pair = Pair(ports, seed)
    try:
        pair.check(-1, [b"FLUSHALL"])
        pair.check(-1, [b"SET", b"str", b"v"])
        if seed % 3 == 2:
            pair.protocol = 3
            pair.call([b"HELLO", b"3"])
        gen = Generator(seed)
        for index in range(COMMANDS_PER_SEED):
            pair.check(index, gen.next())
        for n, key in enumerate([*KEYS, *DST]):
            pair.check(COMMANDS_PER_SEED + n, [b"ZRANGE", key, b"0", b"-1"])
            pair.check(COMMANDS_PER_SEED + n, [b"DEBUG", b"DIGEST-VALUE", key])
        pair.check(COMMANDS_PER_SEED + 9, [b"DEBUG", b"DIGEST"])
    finally:
        pair.close()


def test_generator_is_deterministic() -> None:
    a, b = Generator(5), Generator(5)
    assert [a.next() for _ in range(300)] == [b.next() for _ in range(300)]
