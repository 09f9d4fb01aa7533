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
