"""The table entries of SORT and SORT_RO: data only, Redis 7.0's facts (key specs as Redis
reports them in COMMAND INFO: the BY / GET and STORE keys are "unknown" to the specs, and
``keyspecs.KEYS_FUNCS`` finds SORT's STORE destination as Redis's sortGetKeys does)."""

from __future__ import annotations

from .keyspecs import BeginIndex, BeginUnknown, FindRange, FindUnknown, spec
from .model import Command, entry

_COMPLEXITY = (
    "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the "
    "number of returned elements. When the elements are not sorted, complexity is O(N)."
)
_ARGS = "key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC|DESC] [ALPHA]"
_BY_GET = (
    "For the optional BY/GET keyword. It is marked 'unknown' because the key names derive "
    "from the content of the key we sort"
)
_STORE = (
    "For the optional STORE keyword. It is marked 'unknown' because the keyword can appear "
    "anywhere in the argument array"
)

ENTRIES: list[Command] = [
    entry(
        "sort",
        -2,
        "write denyoom movablekeys",
        (1, 1, 1),
        summary="Sorts the elements in a list, a set, or a sorted set, optionally storing the result.",
        complexity=_COMPLEXITY,
        args=_ARGS + " [STORE destination]",
        acl="@write @set @sortedset @list @slow @dangerous",
        specs=(
            spec("RO access", BeginIndex(1), FindRange(0, 1, 0)),
            spec("RO access", BeginUnknown(), FindUnknown(), _BY_GET),
            spec("OW update", BeginUnknown(), FindUnknown(), _STORE),
        ),
    ),
    entry(
        "sort_ro",
        -2,
        "readonly movablekeys",
        (1, 1, 1),
        summary="Returns the sorted elements of a list, a set, or a sorted set.",
        since="7.0.0",
        complexity=_COMPLEXITY,
        args=_ARGS,
        acl="@read @set @sortedset @list @slow @dangerous",
        specs=(
            spec("RO access", BeginIndex(1), FindRange(0, 1, 0)),
            spec("RO access", BeginUnknown(), FindUnknown(), _BY_GET),
        ),
    ),
]
