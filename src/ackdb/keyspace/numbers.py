"""Number parsing and formatting that reproduces Redis byte for byte.

Owns the conversions between command arguments / stored strings and numbers:

- ``parse_int``: Redis ``string2ll`` (INCR, EXPIRE, ... "value is not an integer or out of
  range"): optional '-', no '+', no spaces, no leading zeros, "-0" rejected, int64 range,
  at most 20 characters.
- ``parse_float``: Redis ``string2d`` (``strtod`` plus checks; ZADD scores, ZINCRBY, ...):
  rejects empty input, a leading space, trailing garbage (embedded NUL included), NaN,
  overflow to +-inf and underflow to zero; accepts "inf"/"+inf"/"-infinity" in any case,
  "1e5", ".5", "5." and C99 hex floats ("0x1p3").
- ``incr_float_text`` / ``hincr_float_text``: INCRBYFLOAT / HINCRBYFLOAT
  (``check_hincr_increment`` is the part of HINCRBYFLOAT that runs before its WRONGTYPE
  check). Redis computes in C ``long double`` (x87 80-bit, 64-bit significand, on x86-64),
  parses with ``strtold`` (``string2ld``: as ``string2d``, and also rejects inputs of 5120
  bytes or more), prints with ``%.17Lf``, trims trailing zeros and the dot, and turns "-0"
  into "0" (``ld2string`` LD_STR_HUMAN). So SET k 0.1, INCRBYFLOAT k 0.2 gives "0.3" where
  Python floats give 0.30000000000000004. Two exact backends: libc ``strtold`` / libm
  ``fmal`` / ``snprintf`` through ctypes where ``long double`` is x87 extended, otherwise a
  pure-Python emulation of the x87 format with exact integer arithmetic (round half to
  even, subnormals, overflow). They agree bit for bit (tested), so the results are those of
  x86-64 Redis on every platform.
- ``timeout_seconds_ms``: the timeout of BLPOP and the other blocking commands (seconds,
  long double, rounded up to whole ms).
- ``format_double_70`` / ``format_double_72`` (= ``format_double``): double replies.

Redis 7.0 vs 7.2 double replies (ZSCORE, ZINCRBY, ZRANGE WITHSCORES, RESP3 doubles):
7.0 prints ``%.17g`` ("inf"/"-inf" spelled out): 1.1 -> "1.1000000000000001",
1e20 -> "1e+20", 1e-7 -> "9.9999999999999995e-08", 3 -> "3". 7.2 (``d2string``) prints
"nan", "inf"/"-inf", "0"/"-0", integral values with ``|x| <= 2**62`` as integers, and
everything else with ``fpconv_dtoa``: Grisu2 digits (shortest in nearly all cases, always
round-trip) laid out by fpconv's rules -- digits followed by at most 7 zeros print as an
integer; a fraction prints plainly when its last digit is at most 6 places after the point
or it lies in [1e-3, 1e4); otherwise d.ddde+x with an unpadded exponent. So 1.1 -> "1.1",
1e20 -> "1e+20", 1e-7 -> "1e-7", 1e-5 -> "0.00001", 2.0**63 -> "9223372036854776000",
1e23 -> "99999999999999990000000". The differential tests run against redis-server 7.0.15,
so compatibility code must pick ``format_double_70`` where it matters.

Must never: touch I/O, time or global state beyond the lazily chosen long double backend;
raise anything but the documented ``ValueError`` subclasses for bad input.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import platform
import re
import struct
from decimal import Decimal
from typing import ClassVar, Final, Protocol

from ..resp.ints import parse_ll

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
_MAX_LONG_DOUBLE_CHARS: Final = 5 * 1024  # string2ld rejects inputs this long or longer

# The strtod/strtold grammar (C locale); NaN forms are left out: Redis rejects NaN anyway.
_FLOAT_RE: Final = re.compile(
    rb"""(?P<neg>[+-]?)(?:
        (?P<inf>[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)
      | 0[xX](?P<hint>[0-9a-fA-F]*)(?:\.(?P<hfrac>[0-9a-fA-F]*))?(?:[pP](?P<hexp>[+-]?[0-9]+))?
      | (?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?(?:[eE](?P<exp>[+-]?[0-9]+))?
    )""",
    re.VERBOSE,
)
# The common case -- plain decimals too short to overflow or underflow -- parsed without
# the full grammar: strtod and float() round them the same way (correctly).
_PLAIN_DECIMAL: Final = re.compile(rb"-?[0-9]{1,17}(?:\.[0-9]{1,17})?")
_C_SPACE: Final = frozenset(b" \t\n\v\f\r")  # isspace() in the C locale
_NONZERO_DIGIT: Final = re.compile(rb"[1-9a-fA-F]")

# Redis string2ll (INCR, EXPIRE, ...): resp.ints holds the one implementation.
parse_int = parse_ll


_plain_decimal = _PLAIN_DECIMAL.fullmatch


def _grammar(b: bytes) -> re.Match[bytes] | None:
    """The strtod parse of all of ``b`` when Redis's pre-checks pass, else None."""
    if not b or b[0] in _C_SPACE:
        return None
    m = _FLOAT_RE.fullmatch(b)
    if m is None or m["inf"] is not None:
        return m
    if m["hint"] is not None:
        return m if m["hint"] or m["hfrac"] else None
    return m if m["int"] or m["frac"] else None


def _mantissa_is_zero(m: re.Match[bytes]) -> bool:
    digits = (m["hint"] or b"") + (m["hfrac"] or b"") + (m["int"] or b"") + (m["frac"] or b"")
    return _NONZERO_DIGIT.search(digits) is None


def parse_float(b: bytes) -> float | None:
    """Redis string2d (getDoubleFromObject, ZADD scores): the double, or None."""
    if _plain_decimal(b) is not None:
        return float(b)
    return parse_float_grammar(b)


def parse_float_grammar(b: bytes) -> float | None:
    """``parse_float`` by the whole strtod grammar (what the plain-decimal path skips)."""
    m = _grammar(b)
    if m is None:
        return None
    if m["inf"] is not None:
        return -math.inf if m["neg"] == b"-" else math.inf
    try:
        value = float.fromhex(b.decode()) if m["hint"] is not None else float(b)
    except OverflowError:
        return None
    if math.isinf(value) or (value == 0.0 and not _mantissa_is_zero(m)):
        return None  # strtod reported ERANGE with HUGE_VAL or zero
    return value


# ---------------------------------------------------------------- INCRBYFLOAT


class FloatIncrError(ValueError):
    """A Redis error reply of INCRBYFLOAT / HINCRBYFLOAT; ``str()`` is the reply text."""

    message: ClassVar[str] = "ERR"

    def __init__(self) -> None:
        super().__init__(self.message)


class NotAFloatError(FloatIncrError):
    message = "ERR value is not a valid float"


class NaNOrInfinityError(FloatIncrError):
    message = "ERR increment would produce NaN or Infinity"


class InfiniteIncrementError(FloatIncrError):
    """HINCRBYFLOAT's increment is +-inf (checked before the key is looked up)."""

    message = "ERR value is NaN or Infinity"


class HashValueNotAFloatError(FloatIncrError):
    message = "ERR hash value is not a float"


class _Backend(Protocol):
    def parse(self, m: re.Match[bytes]) -> object | None: ...
    def is_inf(self, x: object) -> bool: ...
    def add(self, a: object, b: object) -> object | None: ...
    def format_human(self, x: object) -> bytes: ...


def _trim_human(text: bytes) -> bytes:
    """ld2string LD_STR_HUMAN's post-processing of a ``%.17Lf`` rendering."""
    if b"." in text:
        text = text.rstrip(b"0").removesuffix(b".")
    return b"0" if text == b"-0" else text


def _int_of(digits: bytes, base: int = 10) -> int:
    # int(str) is capped at 4300 digits (CVE-2020-10735); Decimal is not.
    if base == 10 and len(digits) > 4000:
        return int(Decimal(digits.decode()))
    return int(digits, base) if digits else 0


def _exp_of(text: bytes | None) -> int:
    """An exponent field, clamped: anything beyond 10**18 over/underflows anyway."""
    if not text:
        return 0
    neg = text.startswith(b"-")
    digits = text.lstrip(b"+-").lstrip(b"0")
    value = int(digits) if 0 < len(digits) <= 18 else (0 if not digits else 10**18)
    return -value if neg else value


class _PyLongDouble:
    """x87 extended precision emulated exactly. A finite value is ``(sig, exp)`` meaning
    ``sig * 2**exp`` with ``|sig| < 2**64``; infinities are ``math.inf`` / ``-math.inf``."""

    EXP_MIN: Final = -16445  # weight of the least significant bit of the least subnormal
    EXP_MAX: Final = 16383 - 63  # weight of the last bit of the largest finite value

    def round_exact(self, n: int, d: int, e: int) -> tuple[int, int] | float:
        """``n / d * 2**e`` (d > 0) rounded half to even onto the x87 grid."""
        if n == 0:
            return (0, 0)
        neg, n = n < 0, abs(n)
        b = n.bit_length() - d.bit_length()  # then 2**(b-1) < n/d < 2**(b+1)
        if (d << b if b >= 0 else d) > (n if b >= 0 else n << -b):
            b -= 1
        shift = max(b + e - 63, self.EXP_MIN)
        k = e - shift
        num, den = (n << k, d) if k >= 0 else (n, d << -k)
        q, r = divmod(num, den)
        if 2 * r > den or (2 * r == den and q & 1):
            q += 1
        if q >> 64:
            q, shift = q >> 1, shift + 1
        if shift > self.EXP_MAX:
            return -math.inf if neg else math.inf
        return (-q if neg else q, shift)

    def parse(self, m: re.Match[bytes]) -> object | None:
        neg = m["neg"] == b"-"
        if m["inf"] is not None:
            return -math.inf if neg else math.inf
        if m["hint"] is not None:
            frac = m["hfrac"] or b""
            sig = _int_of(m["hint"] + frac, 16)
            e2 = _exp_of(m["hexp"]) - 4 * len(frac)
            if sig == 0:
                return (0, 0)
            top = e2 + sig.bit_length()  # 2**(top-1) <= value < 2**top
            if top > 16386 or top < self.EXP_MIN - 1:
                return None  # certain overflow or underflow to zero: ERANGE
            n, d, e = sig, 1, e2
        else:
            digits = ((m["int"] or b"") + (m["frac"] or b"")).lstrip(b"0")
            if not digits:
                return (0, 0)
            e10 = _exp_of(m["exp"]) - len(m["frac"] or b"")
            top = e10 + len(digits)  # 10**(top-1) <= value < 10**top
            if top > 4934 or top < -4950:
                return None  # LDBL_MAX ~ 1.19e4932; half the least subnormal ~ 1.8e-4951
            sig = _int_of(digits)
            n, d, e = (sig * 10**e10, 1, 0) if e10 >= 0 else (sig, 10**-e10, 0)
        result = self.round_exact(-n if neg else n, d, e)
        if isinstance(result, float) or result[0] == 0:
            return None  # ERANGE with HUGE_VAL or zero
        return result

    def is_inf(self, x: object) -> bool:
        return isinstance(x, float)

    def add(self, a: object, b: object) -> object | None:
        if isinstance(a, float) or isinstance(b, float):
            return None  # inf + x is inf, inf - inf is NaN: both refused
        assert isinstance(a, tuple) and isinstance(b, tuple)
        (sa, ea), (sb, eb) = a, b
        e = min(ea, eb)
        result = self.round_exact((sa << (ea - e)) + (sb << (eb - e)), 1, e)
        return None if isinstance(result, float) else result

    def format_human(self, x: object) -> bytes:
        assert isinstance(x, tuple)
        sig, e = x
        sign, mag = ("-" if sig < 0 else ""), abs(sig)
        if e >= 0:
            return _trim_human(f"{sign}{Decimal(mag << e)}".encode())
        q, r = divmod(mag * 10**17, 1 << -e)  # %.17Lf rounds the exact value half to even
        half = 1 << (-e - 1)
        if r > half or (r == half and q & 1):
            q += 1
        whole, frac = divmod(q, 10**17)
        return _trim_human(f"{sign}{Decimal(whole)}.{frac:017d}".encode())


class _X87Scalar(ctypes.c_longdouble):
    """A subclass, so ctypes hands back the raw 80-bit value instead of a Python float."""


class _CtypesLongDouble:
    """libc's strtold / libm's fmal / snprintf on the C ``long double``, like Redis."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libm = ctypes.CDLL(ctypes.util.find_library("m"))
        self._strtold = libc.strtold
        self._strtold.restype = _X87Scalar
        self._strtold.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
        self._fmal = libm.fmal
        self._fmal.restype = _X87Scalar
        self._fmal.argtypes = [_X87Scalar, _X87Scalar, _X87Scalar]
        self._snprintf = libc.snprintf
        self._snprintf.restype = ctypes.c_int
        self._one = self._strtold(b"1", None)

    @staticmethod
    def _fields(x: _X87Scalar) -> tuple[int, int]:
        """(biased exponent, significand) of an x87 value; the sign bit is dropped."""
        sig, sign_exp = struct.unpack_from("<QH", bytes(x))
        return sign_exp & 0x7FFF, sig

    def parse(self, m: re.Match[bytes]) -> object | None:
        x: _X87Scalar = self._strtold(m.string, None)
        exp, sig = self._fields(x)
        if m["inf"] is not None:
            return x
        if exp == 0x7FFF or (exp == 0 and sig == 0 and not _mantissa_is_zero(m)):
            return None  # ERANGE with HUGE_VAL or zero
        return x

    def is_inf(self, x: object) -> bool:
        assert isinstance(x, _X87Scalar)
        return self._fields(x)[0] == 0x7FFF

    def add(self, a: object, b: object) -> object | None:
        # fmal(a, 1, b) rounds a + b once, exactly like the x87 fadd Redis compiles to.
        total: _X87Scalar = self._fmal(a, self._one, b)
        return None if self.is_inf(total) else total

    def format_human(self, x: object) -> bytes:
        buf = ctypes.create_string_buffer(_MAX_LONG_DOUBLE_CHARS)  # per call: thread-safe
        n = self._snprintf(buf, ctypes.c_size_t(len(buf)), b"%.17Lf", x)
        assert 0 < n < len(buf), "LDBL_MAX needs 4951 characters"
        return _trim_human(buf.raw[:n])


def _probe_ctypes() -> _CtypesLongDouble | None:
    """The ctypes backend when C long double is x87 extended with a working libc."""
    if platform.machine().lower() not in {"x86_64", "amd64", "i386", "i686"}:
        return None
    if ctypes.sizeof(ctypes.c_longdouble) not in (12, 16):
        return None
    try:
        backend = _CtypesLongDouble()
        m1, m2 = _grammar(b"0.1"), _grammar(b"0.2")
        assert m1 is not None and m2 is not None
        total = backend.add(backend.parse(m1), backend.parse(m2))
        ok = total is not None and backend.format_human(total) == b"0.3"
        return backend if ok and backend._fields(backend._one) == (0x3FFF, 1 << 63) else None
    except (OSError, AttributeError, TypeError, ValueError):
        return None


_PY_BACKEND: Final = _PyLongDouble()
_backend: _Backend | None = None


def _long_double() -> _Backend:
    global _backend
    if _backend is None:
        _backend = _probe_ctypes() or _PY_BACKEND
    return _backend


def _parse_ld(b: bytes, backend: _Backend) -> object | None:
    """Redis string2ld."""
    if len(b) >= _MAX_LONG_DOUBLE_CHARS:
        return None
    m = _grammar(b)
    return None if m is None else backend.parse(m)


def _incr_float(current: bytes | None, incr: bytes, backend: _Backend) -> bytes:
    value = _parse_ld(b"0" if current is None else current, backend)
    increment = _parse_ld(incr, backend)
    if value is None or increment is None:
        raise NotAFloatError()
    return _add_and_format(value, increment, backend)


def _hincr_increment(incr: bytes, backend: _Backend) -> object:
    increment = _parse_ld(incr, backend)
    if increment is None:
        raise NotAFloatError()
    if backend.is_inf(increment):
        raise InfiniteIncrementError()
    return increment


def _hincr_float(current: bytes | None, incr: bytes, backend: _Backend) -> bytes:
    increment = _hincr_increment(incr, backend)
    value = _parse_ld(b"0" if current is None else current, backend)
    if value is None:
        raise HashValueNotAFloatError()
    return _add_and_format(value, increment, backend)


def _add_and_format(value: object, incr: object, backend: _Backend) -> bytes:
    total = backend.add(value, incr)
    if total is None:
        raise NaNOrInfinityError()
    return backend.format_human(total)


def incr_float_text(current: bytes | None, incr: bytes) -> bytes:
    """INCRBYFLOAT: the new text of ``current`` (None: no key) plus ``incr``.

    Raises NotAFloatError (either side unparsable) or NaNOrInfinityError (the sum, or an
    "inf" operand). The caller checks WRONGTYPE first, as Redis does.
    """
    return _incr_float(current, incr, _long_double())


def check_hincr_increment(incr: bytes) -> None:
    """HINCRBYFLOAT's checks that Redis 7.0 makes before looking the key up (so before
    WRONGTYPE): NotAFloatError, then InfiniteIncrementError for +-inf."""
    _hincr_increment(incr, _long_double())


def hincr_float_text(current: bytes | None, incr: bytes) -> bytes:
    """HINCRBYFLOAT: the new text of field value ``current`` (None: no field) plus ``incr``.

    Raises, in Redis's order: NotAFloatError / InfiniteIncrementError (the increment),
    HashValueNotAFloatError (the stored value), NaNOrInfinityError (the sum).
    """
    return _hincr_float(current, incr, _long_double())


# ------------------------------------------------------------------ blocking timeouts


def timeout_seconds_ms(b: bytes) -> int | None:
    """A blocking command's timeout in seconds (BLPOP, BZPOPMIN, ...) as whole ms, computed
    as Redis 7.2's getTimeoutFromObjectOrReply does before its range checks: ``string2ld``,
    times 1000 in long double, then ``ceill`` (redis#11688, 7.0.8: 0.0001 s is 1 ms, not
    "forever") and the cast to long long. None: not a float.

    The result may lie outside int64: anything above INT64_MAX (+inf and 1e400 included)
    is what 7.2 answers "timeout is out of range" (redis#11338; 7.0 overflows into "timeout
    is negative"); values below INT64_MIN (-inf included) come out as INT64_MIN, what the
    x86-64 conversion gives them. Every step is exact on the x87 grid (the pure-Python
    backend), so "-0.001" is -(1 - 2**-64) ms and rounds up to 0 (forever) as in
    Redis, and "1e-400" (a long double, not a double) is 1 ms."""
    n = parse_int(b)
    if n is not None:
        return max(n * 1000, INT64_MIN)  # exact: |n * 125| < 2**64 wherever it matters
    if len(b) >= _MAX_LONG_DOUBLE_CHARS:
        return None
    m = _grammar(b)
    if m is None:
        return None
    value = _PY_BACKEND.parse(m)
    if value is None:
        return None
    if isinstance(value, tuple):
        value = _PY_BACKEND.round_exact(value[0] * 1000, 1, value[1])
    if isinstance(value, float):  # an infinity, parsed or reached by the product
        return INT64_MAX + 1 if value > 0 else INT64_MIN
    assert isinstance(value, tuple)
    sig: int = value[0]
    exp: int = value[1]
    whole = sig << exp if exp >= 0 else -(-sig >> -exp)  # ceil(sig * 2**exp)
    return max(whole, INT64_MIN)


# ------------------------------------------------------------------ doubles out


def format_double_70(x: float) -> bytes:
    """Redis 7.0 addReplyDouble: ``%.17g``, infinities as "inf" / "-inf"."""
    if math.isinf(x):
        return b"inf" if x > 0 else b"-inf"
    return b"%.17g" % x  # CPython's %g is correctly rounded like glibc's printf


def format_double_72(x: float) -> bytes:
    """Redis 7.2 d2string (addReplyDouble, and what 7.2 stores for ZINCRBY replies)."""
    if math.isnan(x):
        return b"nan"
    if math.isinf(x):
        return b"inf" if x > 0 else b"-inf"
    if x == 0:
        return b"-0" if math.copysign(1.0, x) < 0 else b"0"
    if -(2.0**62) <= x <= 2.0**62 and x == int(x):  # double2ll: exact as long long
        return b"%d" % int(x)
    return _fpconv_dtoa(x)


format_double: Final = format_double_72


# Grisu2 as in Redis 7.2's deps/fpconv (Loitsch, "Printing Floating-Point Numbers Quickly
# and Accurately with Integers", PLDI 2010). Implemented from the paper and fpconv's
# documented choices: 64-bit "diy-fp" arithmetic (C uint64 wrap-around mirrored with
# _M64), cached powers 10**k for k = -348, -340, ..., 340 rounded to nearest, target
# binary exponent in [-60, -32], and fpconv's own layout rules in _fpconv_layout.
_M64: Final = (1 << 64) - 1
_HIDDEN: Final = 1 << 52


def _normalized_pow10(k: int) -> tuple[int, int]:
    """10**k as (f, e): f * 2**e with 2**63 <= f < 2**64, f rounded to nearest."""
    n, d = (10**k, 1) if k >= 0 else (1, 10**-k)
    b = n.bit_length() - d.bit_length()
    if (d << b if b >= 0 else d) > (n if b >= 0 else n << -b):
        b -= 1
    e = b - 63
    num, den = (n << -e, d) if e < 0 else (n, d << e)
    q, r = divmod(num, den)
    return (q + (2 * r >= den), e)


_CACHED_POWERS: Final = tuple(_normalized_pow10(-348 + 8 * i) for i in range(87))


def _cached_pow10(exp: int) -> tuple[int, int, int]:
    """The cached power c (as f, e) putting exp + e + 64 into [-60, -32], and its k."""
    idx = int(int(-(exp + 87) * 0.30102999566398114) + 348) // 8  # C truncation
    while True:
        current = exp + _CACHED_POWERS[idx][1] + 64
        if current < -60:
            idx += 1
        elif current > -32:
            idx -= 1
        else:
            return (*_CACHED_POWERS[idx], -348 + 8 * idx)


def _round_digit(digits: list[int], delta: int, rem: int, kappa: int, frac: int) -> None:
    """Grisu2's weeding: move the last digit towards the exact value while it stays safe."""
    while (
        rem < frac
        and (delta - rem) & _M64 >= kappa
        and ((rem + kappa) & _M64 < frac or frac - rem > (rem + kappa - frac) & _M64)
    ):
        digits[-1] -= 1
        rem = (rem + kappa) & _M64


def _grisu2(x: float) -> tuple[list[int], int]:
    """Digits and decimal exponent K of positive finite ``x`` (value = digits * 10**K)."""
    bits = struct.unpack("<Q", struct.pack("<d", x))[0]
    frac, bexp = bits & (_HIDDEN - 1), (bits >> 52) & 0x7FF
    f, e = (frac + _HIDDEN, bexp - 1075) if bexp else (frac, -1074)
    # Boundaries m+ and m- (the latter closer when f is a power of two), on m+'s exponent.
    uf, ue = (f << 1) + 1, e - 1
    while not uf & (_HIDDEN << 1):
        uf, ue = uf << 1, ue - 1
    uf, ue = uf << 10, ue - 10
    l_shift = 2 if f == _HIDDEN else 1
    lf, le = (f << l_shift) - 1, e - l_shift
    lf = (lf << (le - ue)) & _M64
    while not f & _HIDDEN:
        f, e = f << 1, e - 1
    f, e = f << 11, e - 11
    cf, ce, k = _cached_pow10(ue)
    # diy-fp products keep the upper 64 bits, rounded half up on bit 63.
    wf = (f * cf + (1 << 63)) >> 64
    uf = ((uf * cf + (1 << 63)) >> 64) - 1
    lf = ((lf * cf + (1 << 63)) >> 64) + 1
    shift = -(ue + ce + 64)
    return _generate_digits(wf, uf, lf, shift, -k)


def _generate_digits(wf: int, uf: int, lf: int, shift: int, big_k: int) -> tuple[list[int], int]:
    wfrac, delta = (uf - wf) & _M64, (uf - lf) & _M64
    one = 1 << shift
    part1, part2 = uf >> shift, uf & (one - 1)
    digits: list[int] = []
    for kappa in range(9, -1, -1):  # integral part: divisors 10**9 .. 10**0
        div = 10**kappa
        digit, part1 = divmod(part1, div)
        if digit or digits:
            digits.append(digit)
        rest = ((part1 << shift) + part2) & _M64
        if rest <= delta:
            _round_digit(digits, delta, rest, (div << shift) & _M64, wfrac)
            return digits, big_k + kappa
    kappa, unit = 0, 10
    while True:  # fractional part
        part2, delta, kappa = (part2 * 10) & _M64, (delta * 10) & _M64, kappa - 1
        digit = part2 >> shift
        if digit or digits:
            digits.append(digit)
        part2 &= one - 1
        if part2 < delta:
            _round_digit(digits, delta, part2, one, (wfrac * unit) & _M64)
            return digits, big_k + kappa
        unit *= 10


def _fpconv_layout(digits: list[int], big_k: int, neg: bool) -> str:
    """fpconv's emit_digits: plain integer, plain decimal, or d.ddde[+-]x notation."""
    text, nd = "".join(map(str, digits)), len(digits)
    exp = abs(big_k + nd - 1)
    if big_k >= 0 and exp < nd + 7:
        return text + "0" * big_k
    if big_k < 0 and (big_k > -7 or exp < 4):
        offset = nd + big_k
        if offset <= 0:
            return "0." + "0" * -offset + text
        return text[:offset] + "." + text[offset:]
    nd = min(nd, 18 - neg)
    mantissa = text[0] + ("." + text[1:nd] if nd > 1 else "")
    return f"{mantissa}e{'-' if big_k + nd - 1 < 0 else '+'}{exp}"


def _fpconv_dtoa(x: float) -> bytes:
    """fpconv_dtoa for finite nonzero ``x``."""
    neg = math.copysign(1.0, x) < 0
    digits, big_k = _grisu2(abs(x))
    return (("-" if neg else "") + _fpconv_layout(digits, big_k, neg)).encode()
