"""Leaderless records (keyspace/lww.py): merge is a semilattice join that never lowers a
version; views; encodings; hash-tree leaves."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ackdb.keyspace import lww
from ackdb.keyspace.lww import DELETED, STRING, Record, Version

versions = st.builds(Version, st.integers(0, 5), st.integers(0, 3), st.integers(0, 2))


def _value(v: Version, salt: bytes = b"") -> bytes:
    # One version is one write: the value is a function of it (as in the real system).
    return b"%s%d.%d.%d" % (salt, *v)


@st.composite
def records(draw: st.DrawFn) -> Record:
    r = Record()
    for _ in range(draw(st.integers(0, 4))):
        v = draw(versions)
        kind = draw(st.sampled_from(["set", "del", "hset", "hdel", "expire"]))
        f = draw(st.sampled_from([b"a", b"b", b"c"]))
        if kind == "set":
            # KEEPTTL or not, and the expiry time, are functions of the version too.
            w = lww.string_write(v, _value(v), keep_ttl=v.logical % 2 == 1)
        elif kind == "expire":
            w = lww.expiry_write(v, (v.ms + v.node) % 3 * 100)
        elif kind == "del":
            w = lww.delete_write(v)
        elif kind == "hset":
            w = lww.fields_write(v, {f: _value(v, f)})
        else:
            w = lww.fields_write(v, {f: None})
        lww.merge_into(r, w)
    return r


@given(records(), records())
def test_merge_commutes(a: Record, b: Record) -> None:
    assert lww.merge(a, b) == lww.merge(b, a)


@given(records(), records(), records())
def test_merge_associates(a: Record, b: Record, c: Record) -> None:
    assert lww.merge(lww.merge(a, b), c) == lww.merge(a, lww.merge(b, c))


@given(records(), records())
def test_merge_is_idempotent_and_reports_change(a: Record, b: Record) -> None:
    m = lww.merge(a, b)
    assert lww.merge(m, b) == m
    assert lww.merge(m, m) == m
    copy = a.copy()
    assert lww.merge_into(copy, b) == (copy != a)
    assert not lww.merge_into(m.copy(), b)


@given(records(), records())
def test_merge_never_lowers_a_version(a: Record, b: Record) -> None:
    m = lww.merge(a, b)
    assert m.newest() == max(a.newest(), b.newest())
    assert m.base_version == max(a.base_version, b.base_version)
    for fv, _ in m.fields.values():
        assert fv > m.base_version


@given(records())
def test_encoding_round_trips(r: Record) -> None:
    assert lww.decode(lww.encode(r)) == r
    assert lww.from_plain(lww.to_plain(r)) == r
    assert lww.digest(r) == lww.digest(r.copy())


def test_views_tell_deleted_from_never_existed() -> None:
    v1, v2, v3 = Version(1, 0, 1), Version(2, 0, 1), Version(3, 0, 2)
    assert Record().view() == ("absent", None)
    r = lww.string_write(v1, b"x")
    assert r.view() == ("string", b"x")
    lww.merge_into(r, lww.delete_write(v2))
    assert r.view() == ("deleted", v2) and r.is_tombstone()
    lww.merge_into(r, lww.string_write(v1, b"old"))  # an older write arriving late
    assert r.view() == ("deleted", v2)
    lww.merge_into(r, lww.fields_write(v3, {b"f": b"1"}))
    assert r.view() == ("hash", {b"f": b"1"})
    lww.merge_into(r, lww.fields_write(Version(4, 0, 0), {b"f": None}))
    assert r.view() == ("deleted", Version(4, 0, 0))


def test_fields_are_last_write_wins_each() -> None:
    r = lww.fields_write(Version(5, 0, 1), {b"a": b"A5", b"b": b"B5"})
    lww.merge_into(r, lww.fields_write(Version(3, 0, 2), {b"a": b"A3", b"c": b"C3"}))
    assert r.view() == ("hash", {b"a": b"A5", b"b": b"B5", b"c": b"C3"})
    # A whole-key write supersedes the fields written before it, not after.
    lww.merge_into(r, lww.string_write(Version(4, 0, 0), b"s"))
    assert r.view() == ("hash", {b"a": b"A5", b"b": b"B5"})
    assert r.base_kind == STRING


def test_tie_break_is_the_node_id() -> None:
    a = lww.string_write(Version(7, 0, 1), b"n1")
    b = lww.string_write(Version(7, 0, 2), b"n2")
    assert lww.merge(a, b).view() == lww.merge(b, a).view() == ("string", b"n2")


@pytest.mark.parametrize(
    "bad",
    [b"", b"\x01", lww.encode(Record()) + b"x"[:0] + b"\xc1"],
)
def test_decode_refuses_garbage(bad: bytes) -> None:
    with pytest.raises(ValueError):
        lww.decode(bad)


def test_from_plain_refuses_bad_shapes() -> None:
    for p in (
        [1, 0, 0, STRING, None, []],
        [1, 0, 0, DELETED, b"x", []],
        [1, 0, 0, 9, None, []],
        [-1, 0, 0, DELETED, None, []],
        [1, 0, 0, DELETED, None, [b"f", 1, 0]],
        "nope",
    ):
        with pytest.raises(ValueError):
            lww.from_plain(p)


def test_version_text() -> None:
    v = Version(1700000000000, 3, 12)
    assert Version.parse(v.to_bytes()) == v
    for bad in (b"1.2", b"a.b.c", b"1.-2.3", b""):
        with pytest.raises(ValueError):
            Version.parse(bad)


@given(st.dictionaries(st.binary(max_size=4), records(), max_size=8))
def test_tree_leaves_depend_on_content_not_order(d: dict[bytes, Record]) -> None:
    items = list(d.items())
    assert lww.tree_leaves(items, 4) == lww.tree_leaves(list(reversed(items)), 4)
    assert all(0 <= lww.leaf_of(k, 4) < 16 for k in d)
    assert lww.tree_leaves(items, 0) == [lww.tree_leaves(items, 4) and _xor_all(items)]


def _xor_all(items: list[tuple[bytes, Record]]) -> int:
    acc = 0
    for k, r in items:
        acc ^= lww.entry_hash(k, r)
    return acc


def test_from_plain_drops_fields_the_base_supersedes() -> None:
    forged = [5, 0, 1, STRING, b"s", [b"f", 4, 0, 1, b"old", b"g", 6, 0, 1, b"new"]]
    r = lww.from_plain(forged)
    assert r.fields == {b"g": (Version(6, 0, 1), b"new")}


def test_expiry_cells() -> None:
    v1, v2, v3, v4 = (Version(i, 0, 1) for i in (1, 2, 3, 4))
    r = lww.string_write(v1, b"x")
    lww.merge_into(r, lww.expiry_write(v2, 1000))
    assert r.expires_at() == 1000
    assert r.view_at(999) == ("string", b"x") and r.view_at(1000) == ("absent", None)
    kept = lww.merge(r, lww.string_write(v3, b"y", keep_ttl=True))
    assert kept.expires_at() == 1000 and kept.view_at(0) == ("string", b"y")
    cleared = lww.merge(r, lww.string_write(v3, b"y"))
    assert cleared.expires_at() is None and cleared.view_at(5000) == ("string", b"y")
    # An expiry written after the clearing write is in effect again; PERSIST drops it.
    again = lww.merge(cleared, lww.expiry_write(v4, 7))
    assert again.expires_at() == 7
    assert lww.merge(again, lww.expiry_write(Version(5, 0, 1), 0)).expires_at() is None
    # Order does not matter: the older expiry arriving late changes nothing.
    late = lww.merge(cleared, lww.expiry_write(v2, 1000))
    assert late == cleared and late.expires_at() is None
    assert lww.decode(lww.encode(again)) == again
    assert not lww.delete_write(v1).is_tombstone() or lww.delete_write(v1).expiry is None


def test_old_encodings_are_unchanged_without_expiry() -> None:
    r = lww.string_write(Version(1, 0, 1), b"x", keep_ttl=True)
    assert len(lww.to_plain(r)) == 6
    assert len(lww.to_plain(lww.string_write(Version(1, 0, 1), b"x"))) == 7


def test_bad_expiry_cells_are_refused() -> None:
    plain = lww.to_plain(lww.string_write(Version(1, 0, 1), b"x"))
    for bad in ([1, 2, 3], [0, 0, 0, "x", 0, 0, 0], [0, 0, 0, -2, 0, 0, 0]):
        with pytest.raises(ValueError):
            lww.from_plain([*plain[:6], bad])
    with pytest.raises(ValueError):
        lww.from_plain([*plain, plain[6]])
