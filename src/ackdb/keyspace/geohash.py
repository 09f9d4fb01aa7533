"""Geohashes as Redis's geo commands compute them: the pure geometry of GEOADD, GEOPOS,
GEODIST, GEOHASH and the radius / box searches.

Owns: the 52-bit interleaved geohash (26 steps; latitude bits even, longitude bits odd;
latitude range +-85.05112878, the Web Mercator limit), its decoding to the centre of the
cell, the haversine distance on Redis's sphere (radius 6372797.560856 m) with Redis's
shortcut for equal longitudes, the step estimate for a search radius, the bounding box,
the eight neighbours and which of them a search can skip, the score range of a cell, and
the texts Redis prints (coordinates "%.17Lf" trimmed, distances "%.4f", the base-32 string
of GEOHASH). All arithmetic is IEEE double in Redis's order, so results match bit for bit.
Pure functions: never looks a key up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

STEP_MAX = 26
LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
LONG_MIN, LONG_MAX = -180.0, 180.0
EARTH_RADIUS_M = 6372797.560856
MERCATOR_MAX = 20037726.37
D_R = math.pi / 180.0
_M64 = (1 << 64) - 1
_ALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"
UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}


def _spread(v: int) -> int:
    """The 32 bits of ``v`` moved to the even bit positions of a 64-bit word."""
    out = 0
    for i in range(32):
        out |= ((v >> i) & 1) << (2 * i)
    return out


def _squash(v: int) -> int:
    """The even bits of ``v`` packed into 32 bits (the inverse of ``_spread``)."""
    out = 0
    for i in range(32):
        out |= ((v >> (2 * i)) & 1) << i
    return out


_SPREAD8 = [_spread(i) for i in range(256)]
_SQUASH16 = [_squash(i) for i in range(1 << 16)]


def interleave(lat_bits: int, long_bits: int) -> int:
    out = 0
    for shift in (0, 8, 16, 24):
        out |= _SPREAD8[(lat_bits >> shift) & 0xFF] << (2 * shift)
        out |= _SPREAD8[(long_bits >> shift) & 0xFF] << (2 * shift + 1)
    return out


def deinterleave(bits: int) -> tuple[int, int]:
    """(latitude bits, longitude bits) of an interleaved hash."""
    lat = lon = 0
    for shift in (0, 16, 32, 48):
        lat |= _SQUASH16[(bits >> shift) & 0xFFFF] << (shift // 2)
        lon |= _SQUASH16[(bits >> (shift + 1)) & 0xFFFF] << (shift // 2)
    return lat, lon


def encode(lon: float, lat: float, step: int, lat_range: tuple[float, float]) -> int | None:
    """Redis geohashEncode: the hash of ``step`` steps, None outside the ranges."""
    if not (LONG_MIN <= lon <= LONG_MAX and LAT_MIN <= lat <= LAT_MAX):
        return None
    lat_lo, lat_hi = lat_range
    if not lat_lo <= lat <= lat_hi:
        return None
    lat_offset = (lat - lat_lo) / (lat_hi - lat_lo) * (1 << step)
    long_offset = (lon - LONG_MIN) / (LONG_MAX - LONG_MIN) * (1 << step)
    return interleave(int(lat_offset) & 0xFFFFFFFF, int(long_offset) & 0xFFFFFFFF)


def score_of(lon: float, lat: float) -> int:
    """GEOADD's score: the 52-bit hash of a valid coordinate pair."""
    bits = encode(lon, lat, STEP_MAX, (LAT_MIN, LAT_MAX))
    assert bits is not None
    return bits


@dataclass(frozen=True, slots=True)
class Area:
    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float


def decode_area(bits: int, step: int) -> Area:
    lat_i, lon_i = deinterleave(bits)
    lat_scale = LAT_MAX - LAT_MIN
    long_scale = LONG_MAX - LONG_MIN
    div = float(1 << step)
    return Area(
        LAT_MIN + (lat_i * 1.0 / div) * lat_scale,
        LAT_MIN + ((lat_i + 1) * 1.0 / div) * lat_scale,
        LONG_MIN + (lon_i * 1.0 / div) * long_scale,
        LONG_MIN + ((lon_i + 1) * 1.0 / div) * long_scale,
    )


def decode_score(score: float) -> tuple[float, float]:
    """(longitude, latitude) of a member's score: the centre of its cell, clamped."""
    bits = int(score) & _M64 if score >= 0 else 0
    a = decode_area(bits, STEP_MAX)
    lon = min(max((a.lon_min + a.lon_max) / 2, LONG_MIN), LONG_MAX)
    lat = min(max((a.lat_min + a.lat_max) / 2, LAT_MIN), LAT_MAX)
    return lon, lat


def lat_distance(lat1: float, lat2: float) -> float:
    return EARTH_RADIUS_M * abs(lat2 * D_R - lat1 * D_R)


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Redis geohashGetDistance: haversine on Redis's sphere, in meters."""
    v = math.sin((lon2 * D_R - lon1 * D_R) / 2)
    if v == 0.0:
        return lat_distance(lat1, lat2)
    lat1r, lat2r = lat1 * D_R, lat2 * D_R
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + math.cos(lat1r) * math.cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


@dataclass(frozen=True, slots=True)
class Shape:
    """A search: centre, unit (meters per unit), radius or box width / height in units."""

    lon: float
    lat: float
    to_m: float
    radius: float = 0.0
    width: float = 0.0
    height: float = 0.0
    box: bool = False

    def within(self, lon: float, lat: float) -> float | None:
        """The distance in meters to a point inside the shape, None outside."""
        if not self.box:
            d = distance(self.lon, self.lat, lon, lat)
            return None if d > self.radius * self.to_m else d
        if lat_distance(lat, self.lat) > self.height * self.to_m / 2:
            return None
        # The east-west extent is measured along the point's own parallel (Redis).
        if distance(lon, lat, self.lon, lat) > self.width * self.to_m / 2:
            return None
        return distance(self.lon, self.lat, lon, lat)


def estimate_steps(range_m: float, lat: float) -> int:
    if range_m == 0:
        return 26
    step = 1
    while range_m < MERCATOR_MAX:
        range_m *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return min(max(step, 1), 26)


def _bounds(s: Shape) -> tuple[float, float, float, float]:
    """(min lon, min lat, max lon, max lat) around the shape (Redis geohashBoundingBox)."""
    height = s.to_m * (s.height / 2 if s.box else s.radius)
    width = s.to_m * (s.width / 2 if s.box else s.radius)
    lat_delta = (height / EARTH_RADIUS_M) / D_R
    top = (width / EARTH_RADIUS_M / math.cos((s.lat + lat_delta) * D_R)) / D_R
    bottom = (width / EARTH_RADIUS_M / math.cos((s.lat - lat_delta) * D_R)) / D_R
    delta = bottom if s.lat < 0 else top
    return s.lon - delta, s.lat - lat_delta, s.lon + delta, s.lat + lat_delta


def _move(bits: int, step: int, dx: int, dy: int) -> int:
    """Redis geohash_move_x / _y: the neighbouring cell ``dx``, ``dy`` cells away."""
    odd, even = 0xAAAAAAAAAAAAAAAA, 0x5555555555555555
    shift = 64 - step * 2
    if dx:
        x, y = bits & odd, bits & even
        zz = even >> shift
        x = (x + zz + 1) if dx > 0 else ((x | zz) - (zz + 1))
        bits = ((x & _M64) & (odd >> shift)) | y
    if dy:
        x, y = bits & odd, bits & even
        zz = odd >> shift
        y = (y + zz + 1) if dy > 0 else ((y | zz) - (zz + 1))
        bits = x | ((y & _M64) & (even >> shift))
    return bits


# The cells a search visits, in Redis's order: centre, N, S, E, W, NE, NW, SE, SW.
_DIRS = [(0, 0), (0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, 1), (1, -1), (-1, -1)]


def search_cells(s: Shape) -> list[tuple[int, int] | None]:
    """The nine cells (bits, step) to scan, None for a skipped one (Redis
    geohashCalculateAreasByShapeWGS84)."""
    min_lon, min_lat, max_lon, max_lat = _bounds(s)
    if s.box:
        r = math.sqrt((s.width / 2) * (s.width / 2) + (s.height / 2) * (s.height / 2))
    else:
        r = s.radius
    steps = estimate_steps(r * s.to_m, s.lat)
    rng = (LAT_MIN, LAT_MAX)
    bits = encode(s.lon, s.lat, steps, rng) or 0
    north = decode_area(_move(bits, steps, 0, 1), steps)
    south = decode_area(_move(bits, steps, 0, -1), steps)
    east = decode_area(_move(bits, steps, 1, 0), steps)
    west = decode_area(_move(bits, steps, -1, 0), steps)
    if steps > 1 and (
        north.lat_max < max_lat
        or south.lat_min > min_lat
        or east.lon_max < max_lon
        or west.lon_min > min_lon
    ):
        steps -= 1
        bits = encode(s.lon, s.lat, steps, rng) or 0
    area = decode_area(bits, steps)
    cells: list[tuple[int, int] | None] = [(_move(bits, steps, dx, dy), steps) for dx, dy in _DIRS]
    if steps >= 2:
        skip = set()
        if area.lat_min < min_lat:
            skip |= {2, 7, 8}
        if area.lat_max > max_lat:
            skip |= {1, 5, 6}
        if area.lon_min < min_lon:
            skip |= {4, 8, 6}
        if area.lon_max > max_lon:
            skip |= {3, 7, 5}
        for i in skip:
            cells[i] = None
    return cells


def cell_scores(bits: int, step: int) -> tuple[int, int]:
    """The score range [lo, hi) of the members inside a cell."""
    shift = 52 - step * 2
    return bits << shift, (bits + 1) << shift


def coord_text(x: float) -> bytes:
    """Redis's human long double: "%.17Lf" with trailing zeros (and '.') removed."""
    text = b"%.17f" % x
    text = text.rstrip(b"0").rstrip(b".")
    return b"0" if text == b"-0" else text


def distance_text(d: float) -> bytes:
    return b"%.4f" % d


def hash_text(score: float) -> bytes:
    """GEOHASH: the 11-character standard geohash (latitude range +-90) of a score."""
    lon, lat = decode_score(score)
    lat_offset = (lat + 90.0) / 180.0 * (1 << STEP_MAX)
    long_offset = (lon + 180.0) / 360.0 * (1 << STEP_MAX)
    bits = interleave(int(lat_offset) & 0xFFFFFFFF, int(long_offset) & 0xFFFFFFFF)
    out = bytearray()
    for i in range(10):
        out.append(_ALPHABET[(bits >> (52 - (i + 1) * 5)) & 0x1F])
    out.append(_ALPHABET[0])
    return bytes(out)
