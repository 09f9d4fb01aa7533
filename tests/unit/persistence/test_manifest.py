"""The AOF manifest: Redis 7's line format, validation, sequence numbers."""

from __future__ import annotations

import pytest

from ackdb.persistence import manifest as mf


def test_round_trip_and_order() -> None:
    text = (
        "file appendonly.aof.1.incr.aof seq 1 type h\n"
        "file appendonly.aof.2.base.ackdb seq 2 type b\n"
        "file appendonly.aof.3.incr.aof seq 3 type i\n"
        "file appendonly.aof.2.incr.aof seq 2 type i\n"
    )
    m = mf.parse(text)
    assert m.base is not None and m.base.name == "appendonly.aof.2.base.ackdb"
    assert [f.seq for f in m.incrs] == [2, 3]
    assert [f.name for f in m.files][0] == m.base.name
    assert mf.parse(m.dump()) == m
    assert m.next_seq("i") == 4 and m.next_seq("b") == 3


@pytest.mark.parametrize(
    "text",
    [
        "file a seq x type i\n",
        "file a seq 1 type q\n",
        "file a/b seq 1 type i\n",
        "file a seq 1\n",
        "file a seq 1 type i\nfile a seq 2 type i\n",
        "file a seq 1 type b\nfile b seq 2 type b\n",
        "file a seq 0 type i\n",
    ],
)
def test_invalid_manifests_are_refused(text: str) -> None:
    with pytest.raises(mf.ManifestError):
        mf.parse(text)


def test_install_base_moves_older_files_to_history() -> None:
    """After a rewrite the new base and the incremental files from its switch-over on are
    the AOF; the old base and older incremental files become history (to delete)."""
    m = mf.Manifest(
        base=mf.AofFile("a.aof.1.base.ackdb", 1, "b"),
        incrs=[mf.AofFile("a.aof.1.incr.aof", 1, "i"), mf.AofFile("a.aof.2.incr.aof", 2, "i")],
        history=[mf.AofFile("a.aof.0.incr.aof", 0, "h")],
    )
    dropped = mf.install_base(m, "a.aof.2.base.ackdb", "a.aof.2.incr.aof")
    assert [f.name for f in dropped] == ["a.aof.1.base.ackdb", "a.aof.1.incr.aof"]
    assert m.base == mf.AofFile("a.aof.2.base.ackdb", 2, "b")
    assert [f.name for f in m.incrs] == ["a.aof.2.incr.aof"]
    assert [f.name for f in m.history] == [
        "a.aof.1.base.ackdb",
        "a.aof.1.incr.aof",
        "a.aof.0.incr.aof",
    ]
    with pytest.raises(ValueError):
        mf.install_base(m, "a.aof.3.base.ackdb", "a.aof.9.incr.aof")
