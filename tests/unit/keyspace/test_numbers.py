"""ackdb.keyspace.numbers against vectors recorded from redis-server 7.0.15.

Unless a comment says otherwise, each expected value is what redis-server 7.0.15 replied:
parse_int through ``SET i <text>; INCRBY i 0``, parse_float through ``ZADD z <text> m``
(+ ``ZSCORE`` for format_double_70), incr_float_text through ``SET k <current>;
INCRBYFLOAT k <incr>`` (``DEL k`` for a missing current), hincr_float_text through
``HSET h f <current>; HINCRBYFLOAT h f <incr>``.
"""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackdb.keyspace import numbers
from ackdb.keyspace.numbers import (
    HashValueNotAFloatError,
    InfiniteIncrementError,
    NaNOrInfinityError,
    NotAFloatError,
    check_hincr_increment,
    format_double,
    format_double_70,
    format_double_72,
    hincr_float_text,
    incr_float_text,
    parse_float,
    parse_float_grammar,
    parse_int,
)

INT_VECTORS = [
    (b"0", 0),
    (b"-0", None),
    (b"+1", None),
    (b"01", None),
    (b" 1", None),
    (b"1 ", None),
    (b"1\x00", None),
    (b"", None),
    (b"-", None),
    (b"9223372036854775807", 2**63 - 1),
    (b"9223372036854775808", None),
    (b"-9223372036854775808", -(2**63)),
    (b"-9223372036854775809", None),
    (b"-00000000000000000001", None),
]


@pytest.mark.parametrize(("text", "expected"), INT_VECTORS)
def test_parse_int(text: bytes, expected: int | None) -> None:
    assert parse_int(text) == expected


FLOAT_VECTORS = [
    (b"1e400", None),  # overflow
    (b"1e-400", None),  # underflow to zero
    (b"1e-310", 1e-310),  # subnormal: ERANGE but accepted
    (b"0x1p3", 8.0),
    (b"nan", None),
    (b"inf", math.inf),
    (b"-inf", -math.inf),
    (b"+inf", math.inf),
    (b"infinity", math.inf),
    (b" 1", None),
    (b"1 ", None),
    (b"1e5", 100000.0),
    (b"", None),
    (b".5", 0.5),
    (b"5.", 5.0),
    (b"1_0", None),
    (b"0e99999", 0.0),
]


@pytest.mark.parametrize(("text", "expected"), FLOAT_VECTORS)
def test_parse_float(text: bytes, expected: float | None) -> None:
    assert parse_float(text) == expected


@pytest.mark.parametrize(
    "text", [b"1\x00", b"0x", b"1e", b"1e+", b"0x1p", b".", b"-", b"infinit", b"NaN", b"\t1"]
)
def test_parse_float_rejects_partial_parses(text: bytes) -> None:
    # Standard strtod behaviour: these parse a prefix, so Redis's length check refuses them.
    assert parse_float(text) is None


INCR_VECTORS = [
    (b"0.1", b"0.2", b"0.3"),
    (None, b"-0.0", b"0"),
    (b"1", b"-1.00000000000000000001", b"0"),
    (b"3.814697265625e-06", b"0", b"0.00000381469726562"),  # exact tie: half to even
    (b"0x10", b"1", b"17"),
    (b"10.5", b"0.1", b"10.6"),
    (b"5.0e3", b"2.0e2", b"5200"),
    (b"1e30", b"1", b"1000000000000000000024696061952"),
    (b"-5", b"0.000000000000000001", b"-5"),
    (b"1", b"1e-4940", b"1"),
    (b"9223372036854775807", b"1", b"9223372036854775808"),
    (b"0.1", b"0.7", b"0.8"),
    (b"1.5", b"-1.5", b"0"),
    (None, b"1e-17", b"0.00000000000000001"),
    (None, b"-1e-17", b"-0.00000000000000001"),
    (None, b"5e-18", b"0"),
    (None, b"1.5e-17", b"0.00000000000000002"),
    (b"3", b"1.1", b"4.1"),
    (b"0x1p-16445", b"0", b"0"),  # least x87 subnormal
    (b"1", b"0X.8P1", b"2"),
    (b"1", b"+.5e+1", b"6"),
]


@pytest.mark.parametrize(("current", "incr", "expected"), INCR_VECTORS)
def test_incr_float_text(current: bytes | None, incr: bytes, expected: bytes) -> None:
    assert incr_float_text(current, incr) == expected


@pytest.mark.parametrize(("current", "incr", "expected"), INCR_VECTORS)
def test_pure_python_backend_vectors(current: bytes | None, incr: bytes, expected: bytes) -> None:
    # The fallback where C long double is not x87 (ARM, Windows) must give the same text.
    assert numbers._incr_float(current, incr, numbers._PY_BACKEND) == expected


INCR_ERRORS = [
    (b"\x00", b"1", NotAFloatError),
    (b"1\x00x", b"1", NotAFloatError),
    (b" 1", b"1", NotAFloatError),
    (b"1", b"1 ", NotAFloatError),
    (b"abc", b"1", NotAFloatError),
    (b"1", b"nan", NotAFloatError),
    (b"1e5000", b"1", NotAFloatError),  # beyond LDBL_MAX
    (b"1", b"1e-5000", NotAFloatError),  # underflows to zero
    (b"0x1p-16446", b"0", NotAFloatError),  # half the least subnormal: ties to zero
    (b"1", b"inf", NaNOrInfinityError),
    (b"inf", b"-inf", NaNOrInfinityError),
    (b"1e4932", b"1e4932", NaNOrInfinityError),
    (b"-1.18973149535723176502e+4932", b"-1e4916", NaNOrInfinityError),
]


@pytest.mark.parametrize(("current", "incr", "error"), INCR_ERRORS)
def test_incr_float_errors(current: bytes, incr: bytes, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        incr_float_text(current, incr)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith("ERR ")
    with pytest.raises(error):
        numbers._incr_float(current, incr, numbers._PY_BACKEND)


def test_incr_float_error_texts() -> None:
    assert str(NotAFloatError()) == "ERR value is not a valid float"
    assert str(NaNOrInfinityError()) == "ERR increment would produce NaN or Infinity"
    assert str(InfiniteIncrementError()) == "ERR value is NaN or Infinity"
    assert str(HashValueNotAFloatError()) == "ERR hash value is not a float"


def test_long_double_input_length_limit() -> None:
    # string2ld refuses 5120 bytes or more (MAX_LONG_DOUBLE_CHARS).
    assert incr_float_text(b"0" * 5119, b"1") == b"1"
    with pytest.raises(NotAFloatError):
        incr_float_text(b"0" * 5120, b"1")
    with pytest.raises(NotAFloatError):
        incr_float_text(b"1", b"0" * 5120)


def test_largest_long_double_prints_in_full() -> None:
    text = incr_float_text(b"1.18973149535723176502e+4932", b"0")
    assert len(text) == 4933 and text.startswith(b"118973149535723176502126385303")


def test_hincr_float() -> None:
    assert hincr_float_text(b"0.1", b"0.2") == b"0.3"
    assert hincr_float_text(None, b"1.5") == b"1.5"
    with pytest.raises(InfiniteIncrementError):  # before the key is even looked up
        check_hincr_increment(b"inf")
    with pytest.raises(NotAFloatError):
        check_hincr_increment(b"nan")
    with pytest.raises(HashValueNotAFloatError):
        hincr_float_text(b"abc", b"1")
    with pytest.raises(NotAFloatError):
        hincr_float_text(b"abc", b"x")  # the increment is checked first
    with pytest.raises(NaNOrInfinityError):
        hincr_float_text(b"1e4932", b"1e4932")


FORMAT_70 = [
    (1.1, b"1.1000000000000001"),
    (3.0, b"3"),
    (1e20, b"1e+20"),
    (1e-7, b"9.9999999999999995e-08"),
    (0.1, b"0.10000000000000001"),
    (math.inf, b"inf"),
    (-math.inf, b"-inf"),
    (123456789012345678.0, b"1.2345678901234568e+17"),
    (1e16, b"10000000000000000"),
    (1e17, b"1e+17"),
    (5e-324, b"4.9406564584124654e-324"),
    (1.7976931348623157e308, b"1.7976931348623157e+308"),
    (0.3, b"0.29999999999999999"),
    (-1.5e-300, b"-1.5000000000000001e-300"),
    (9007199254740993.0, b"9007199254740992"),
]


@pytest.mark.parametrize(("value", "expected"), FORMAT_70)
def test_format_double_70(value: float, expected: bytes) -> None:
    assert format_double_70(value) == expected


# Redis 7.2 output: d2string's rules plus deps/fpconv's Grisu2 output. No 7.2 server was
# available, so these came from Redis 7.2's fpconv_dtoa.c compiled in a scratch directory
# (a test oracle, not shipped); 1,000,000 random doubles agreed with it bit for bit.
FORMAT_72 = [
    (1.1, b"1.1"),
    (3.0, b"3"),
    (-0.0, b"-0"),
    (0.0, b"0"),
    (math.inf, b"inf"),
    (-math.inf, b"-inf"),
    (math.nan, b"nan"),
    (1e20, b"1e+20"),
    (1e23, b"99999999999999990000000"),  # Grisu2 is not always shortest
    (1e-7, b"1e-7"),
    (1.5e-7, b"1.5e-7"),
    (1e-5, b"0.00001"),
    (0.0001, b"0.0001"),
    (1e16, b"10000000000000000"),  # integral and within 2**62: printed as an integer
    (1e17, b"100000000000000000"),
    (2.0**62, b"4611686018427387904"),
    (2.0**63, b"9223372036854776000"),
    (-(2.0**63), b"-9223372036854776000"),
    (5e-324, b"5e-324"),
    (2.225073858507201e-308, b"2.225073858507201e-308"),
    (1.7976931348623157e308, b"1.7976931348623157e+308"),
    (0.3, b"0.3"),
    (4.35, b"4.35"),
    (1 / 3, b"0.3333333333333333"),
    (123456.789, b"123456.789"),
]


@pytest.mark.parametrize(("value", "expected"), FORMAT_72)
def test_format_double_72(value: float, expected: bytes) -> None:
    assert format_double_72(value) == expected
    assert format_double(value) == expected


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_double_72_round_trips(value: float) -> None:
    text = format_double_72(value)
    assert float(text) == value
    assert math.copysign(1.0, float(text)) == math.copysign(1.0, value)
    # Up to 17 digits + 7 zeros + sign: one more than fpconv_dtoa's documented 24 bytes
    # (-1.0273833063534636e+23 prints as -102738330635346360000000; Redis's buffers are
    # larger, so this is harmless there).
    assert len(text) <= 25


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_format_double_72_round_trips_any_bit_pattern(bits: int) -> None:
    value = struct.unpack("<d", struct.pack("<Q", bits))[0]
    if math.isfinite(value):
        assert float(format_double_72(value)) == value


CTYPES_BACKEND = numbers._probe_ctypes()
NUMBER_TEXT = st.one_of(
    st.from_regex(rb"\A[+-]?[0-9]{0,25}(\.[0-9]{0,25})?([eE][+-]?[0-9]{1,4})?\Z"),
    st.from_regex(rb"\A[+-]?0[xX][0-9a-f]{0,20}(\.[0-9a-f]{0,8})?([pP][+-]?[0-9]{1,5})?\Z"),
    st.floats().map(lambda f: repr(f).encode()),
    st.binary(max_size=6),
)


@pytest.mark.skipif(CTYPES_BACKEND is None, reason="C long double is not x87 extended here")
@settings(max_examples=600, deadline=None)
@given(current=NUMBER_TEXT, incr=NUMBER_TEXT)
def test_python_long_double_matches_libc(current: bytes, incr: bytes) -> None:
    assert CTYPES_BACKEND is not None
    outcomes = []
    for backend in (numbers._PY_BACKEND, CTYPES_BACKEND):
        try:
            outcomes.append(numbers._incr_float(current, incr, backend))
        except numbers.FloatIncrError as error:
            outcomes.append(type(error).__name__.encode())
    assert outcomes[0] == outcomes[1]


# Blocking-command timeouts: seconds as long double, times 1000, rounded up (ceill). The
# first group is redis-server 7.0.15's behaviour (a reply, a wait, or no wait), the second
# its long double arithmetic (redis#11687: 0.001 * 1000 is just below 1).
TIMEOUT_VECTORS = [
    (b"0", 0),
    (b"-0", 0),
    (b"3", 3000),
    (b"-3", -3000),
    (b"0.5", 500),
    (b"0.0001", 1),
    (b"-0.0005", 0),
    (b"-0.0011", -1),
    (b"0x1p-10", 1),
    (b"1e-400", 1),
    (b"-1e-400", 0),
    (b"1e-4950", 1),
    (b"1e-5000", None),
    (b"nan", None),
    (b"abc", None),
    (b" 1", None),
    (b"0.001", 1),
    (b"-0.001", 0),
    (b"0.0015", 2),
    (b"9223372036854775807", (2**63 - 1) * 1000),
    (b"-9223372036854775808", -(2**63)),  # below LLONG_MIN: what x86-64's cast gives
    (b"-inf", -(2**63)),
    (b"-1e400", -(2**63)),
]


@pytest.mark.parametrize(("text", "expected"), TIMEOUT_VECTORS)
def test_timeout_seconds_ms(text: bytes, expected: int | None) -> None:
    assert numbers.timeout_seconds_ms(text) == expected


@pytest.mark.parametrize("text", [b"inf", b"+inf", b"1e400", b"9.3e15", b"9223372036854775.808"])
def test_timeout_seconds_ms_beyond_llong_max(text: bytes) -> None:
    value = numbers.timeout_seconds_ms(text)
    assert value is not None and value > 2**63 - 1  # Redis 7.2: "timeout is out of range"


def _libc_timeout_ms(text: bytes) -> int | None:
    """The same computation in C long double: strtold, fmal(x, 1000, 0), ceill."""
    import ctypes
    import ctypes.util

    assert CTYPES_BACKEND is not None
    m = numbers._grammar(text)
    if m is None or len(text) >= numbers._MAX_LONG_DOUBLE_CHARS:
        return None
    x = CTYPES_BACKEND.parse(m)
    if x is None:
        return None
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    libm.ceill.restype = libm.fmal.restype = numbers._X87Scalar
    libm.ceill.argtypes = [numbers._X87Scalar]
    libm.fmal.argtypes = [numbers._X87Scalar] * 3
    thousand = CTYPES_BACKEND._strtold(b"1000", None)
    zero = CTYPES_BACKEND._strtold(b"0", None)
    up = libm.ceill(libm.fmal(x, thousand, zero))
    sig, sign_exp = struct.unpack_from("<QH", bytes(up))
    exp, neg = sign_exp & 0x7FFF, bool(sign_exp & 0x8000)
    if exp == 0x7FFF:
        return -(2**63) if neg else 2**63
    value = sig << (exp - 16383 - 63) if exp - 16383 - 63 >= 0 else sig >> (16383 + 63 - exp)
    return max(-value if neg else value, -(2**63))


@pytest.mark.skipif(CTYPES_BACKEND is None, reason="C long double is not x87 extended here")
@settings(max_examples=400, deadline=None)
@given(text=NUMBER_TEXT)
def test_timeout_seconds_ms_matches_libc(text: bytes) -> None:
    ours = numbers.timeout_seconds_ms(text)
    theirs = _libc_timeout_ms(text)
    if ours is not None and ours > 2**63 - 1:  # out of range either way
        assert theirs is not None and theirs > 2**63 - 1
    else:
        assert ours == theirs


@given(
    st.from_regex(rb"\A-?[0-9]{1,17}(\.[0-9]{1,17})?\Z")
    | st.from_regex(rb"\A[+-]?[0-9]{0,20}(\.[0-9]{0,20})?([eE][+-]?[0-9]{1,4})?\Z")
)
def test_plain_decimal_path_agrees_with_the_grammar(b: bytes) -> None:
    b = b.strip(b"\n")  # from_regex may add a trailing newline before \Z
    assert repr(parse_float(b)) == repr(parse_float_grammar(b))  # -0.0 too
