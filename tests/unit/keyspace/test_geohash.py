"""Geohash geometry: known answers from Redis's GEOADD / GEOPOS / GEOHASH / GEODIST docs
(the Sicily example), interleaving round trips, neighbours and the search cells."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ackdb.keyspace import geohash as gh

PALERMO = (13.361389, 38.115556)
CATANIA = (15.087269, 37.502669)


def test_redis_docs_sicily_example() -> None:
    s = gh.score_of(*PALERMO)
    assert s == 3479099956230698  # ZSCORE Sicily Palermo
    lon, lat = gh.decode_score(s)
    assert gh.coord_text(lon) == b"13.36138933897018433"
    assert gh.coord_text(lat) == b"38.11555639549629859"
    assert gh.hash_text(s) == b"sqc8b49rny0"
    d = gh.distance(*gh.decode_score(s), *gh.decode_score(gh.score_of(*CATANIA)))
    assert gh.distance_text(d) == b"166274.1516"
    assert gh.distance_text(d / 1000) == b"166.2742"


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_interleave_round_trips(lat: int, lon: int) -> None:
    bits = gh.interleave(lat, lon)
    assert gh.deinterleave(bits) == (lat, lon)
    assert bits & 0x5555555555555555 == gh.interleave(lat, 0)


@given(st.floats(-180, 180, allow_nan=False), st.floats(gh.LAT_MIN, gh.LAT_MAX, allow_nan=False))
def test_decoded_cell_contains_the_point(lon: float, lat: float) -> None:
    a = gh.decode_area(gh.score_of(lon, lat), gh.STEP_MAX)
    eps = 1e-9  # the offset's rounding can put a point on a cell's edge by an ulp
    assert a.lon_min - eps <= lon <= a.lon_max + eps and a.lat_min - eps <= lat <= a.lat_max + eps


def test_coordinates_outside_the_mercator_range_do_not_encode() -> None:
    assert gh.encode(0, 85.06, 26, (gh.LAT_MIN, gh.LAT_MAX)) is None
    assert gh.encode(180.01, 0, 26, (gh.LAT_MIN, gh.LAT_MAX)) is None


def test_neighbours_are_adjacent_cells() -> None:
    step = 10
    bits = gh.encode(*PALERMO, step, (gh.LAT_MIN, gh.LAT_MAX))
    assert bits is not None
    centre = gh.decode_area(bits, step)
    cells = gh.search_cells(gh.Shape(*PALERMO, 1.0, radius=10_000))
    assert cells[0] is not None and len(cells) == 9
    north = gh.decode_area(gh._move(bits, step, 0, 1), step)
    east = gh.decode_area(gh._move(bits, step, 1, 0), step)
    assert north.lat_min == centre.lat_max and north.lon_min == centre.lon_min
    assert east.lon_min == centre.lon_max and east.lat_min == centre.lat_min


def test_step_estimate() -> None:
    assert gh.estimate_steps(0, 0) == 26
    assert gh.estimate_steps(1, 0) == 24
    assert gh.estimate_steps(5_000_000, 0) == 2
    assert gh.estimate_steps(30_000_000, 0) == 1
    assert gh.estimate_steps(1000, 70) == gh.estimate_steps(1000, 0) - 1
    assert gh.estimate_steps(1000, -81) == gh.estimate_steps(1000, 0) - 2


def test_box_uses_the_points_parallel() -> None:
    # A point 100 km wide of the centre's meridian at a higher latitude: inside a 200 km
    # box measured along its own parallel (as Redis measures), though not along the centre's.
    shape = gh.Shape(13.631123, 48.444564, 1000.0, width=100, height=2000, box=True)
    assert shape.within(14.332890808582306, 50.69399862098483) is not None


def test_coordinate_texts() -> None:
    assert gh.coord_text(1.5) == b"1.5"
    assert gh.coord_text(-0.0) == b"0"
    assert gh.coord_text(180.0) == b"180"
    assert gh.distance_text(0.0) == b"0.0000"
