"""Random command sequences for the differential test (``test_differential.py``).

Owns: what is sent and how each reply is compared (``Op.mode``). One ``random.Random(seed)``
decides everything, so a seed replays the same sequence; the generator never looks at a
reply, so both servers get the identical sequence.

Keys come from a small space (string and hash commands share some keys) so types collide
and WRONGTYPE happens. Expiry times never fire during a run (all in the future are >= 10000 s
away) or are in the past (deleted at once), and they are spaced so that NX/XX/GT/LT never
depend on which server ran a command a millisecond later:
- relative times are ``unit * 10000 s + command index`` (two with the same unit are ordered
  by index, whatever the clock says), in seconds or the same instant in milliseconds;
- absolute times are ``seed start + unit * 10000 s + 5000 s``: later than every relative
  time of the same unit while ``command index + seconds since the seed started < 5000``
  (``COMMANDS_MAX`` keeps the index far below that).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

UNIT_S = 10_000  # spacing of future expiry times (see the module docstring)
ABSOLUTE_OFFSET_S = 5_000
COMMANDS_MAX = 2_000  # per seed: far below ABSOLUTE_OFFSET_S, so the spacing holds
DBS = 3  # databases used (SELECT / MOVE / COPY / SWAPDB targets 0..2; bad ones too)
STRING_KEYS = [b"s1", b"s2", b"s3", b"{k}mix1", b"mix2"]
HASH_KEYS = [b"h1", b"h2", b"{k}mix1", b"mix2"]
ALL_KEYS = sorted(set(STRING_KEYS) | set(HASH_KEYS)) + [b"missing"]
FIELDS = [b"f1", b"f2", b"f3", b"n", b"x" * 70, b""]
BAD_INTS = [b"abc", b"1.5", b"", b" 1", b"9223372036854775808", b"-9223372036854775809", b"0x1"]
BAD_FLOATS = [b"abc", b"", b"1.2.3", b"nan", b"inf", b"-inf", b"1e400", b"0x1p3"]


@dataclass(slots=True)
class Op:
    """One command and how its reply is compared.

    mode: ``exact``; ``sorted`` (array order is the server's hash order: KEYS, HKEYS,
    HVALS); ``pairs`` (HGETALL: compare as a dict); ``ttl_s`` / ``ttl_ms`` / ``abs_s`` /
    ``abs_ms`` (integers compared with a tolerance, negatives exactly); ``encoding``
    (OBJECT ENCODING, see ``STICKY_ENCODINGS`` in the test); ``exec`` (each element
    compared by the mode of the queued op); ``hello`` (only the reply type).
    """

    argv: list[bytes]
    mode: str = "exact"
    queued: list[Op] = field(default_factory=list)  # for EXEC: the ops queued since MULTI

    def text(self) -> str:
        return " ".join(_show(a) for a in self.argv)


def _show(a: bytes) -> str:
    s = a.decode("utf-8", "backslashreplace")
    if len(s) > 40:
        s = s[:37] + "..."
    if not s or any(ch in s for ch in " \"'\\") or not s.isprintable():
        return repr(s)
    return s


def b(x: object) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode()


class Generator:
    """Yields ``Op``s for one seed; ``finish()`` gives what must run after the last one."""

    def __init__(self, seed: int, base_s: int) -> None:
        self.rng = random.Random(seed)
        self.base_s = base_s
        self.index = 0
        self.in_multi = False
        self.queued: list[Op] = []
        self.follow_up: list[Op] = []  # sent next, before anything random
        self.past: set[bytes] = set()  # absolute times generated in the past
        self.table = [(w, f) for w, f in OPS]
        self.total_weight = sum(w for w, _ in self.table)

    # -- building blocks --------------------------------------------------------------

    def skey(self) -> bytes:
        return self.rng.choice(STRING_KEYS + [b"missing"])

    def hkey(self) -> bytes:
        return self.rng.choice(HASH_KEYS + [b"missing"])

    def key(self) -> bytes:
        return self.rng.choice(ALL_KEYS)

    def keys(self, lo: int = 1, hi: int = 4) -> list[bytes]:
        return [self.key() for _ in range(self.rng.randint(lo, hi))]

    def field(self) -> bytes:
        return self.rng.choice(FIELDS)

    def value(self) -> bytes:
        r = self.rng.random()
        rng = self.rng
        if r < 0.30:
            return b(rng.randint(-20, 200))
        if r < 0.38:
            return rng.choice(
                [
                    b"9223372036854775807",
                    b"-9223372036854775808",
                    b"9223372036854775808",
                    b"12345678901234567890",
                    b"-0",
                    b"007",
                    b"+1",
                    b" 5",
                    b"0",
                ]
            )
        if r < 0.48:
            return rng.choice(
                [
                    b"1.5",
                    b"-0.0",
                    b"1e3",
                    b"3.0e-5",
                    b"0.1",
                    b"1.7976931348623157e308",
                    b"5e-324",
                    b"10.50",
                    b"inf",
                    b".5",
                ]
            )
        if r < 0.58:
            return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 12)))
        if r < 0.66:
            return rng.choice([b"", b"a\r\nb", b"hello world", b"\x00\xff"])
        if r < 0.76:  # around the embstr limit (44 bytes) and the listpack value limit (64)
            return b"v" * rng.choice([43, 44, 45, 63, 64, 65, 100])
        return rng.choice([b"abc", b"xyz", b"value", b"q"]) + b(rng.randint(0, 9))

    def int_arg(self, lo: int = -100, hi: int = 100) -> bytes:
        r = self.rng.random()
        if r < 0.08:
            return self.rng.choice(BAD_INTS)
        if r < 0.14:
            return self.rng.choice(
                [b"9223372036854775807", b"-9223372036854775808", b"4611686018427387904"]
            )
        return b(self.rng.randint(lo, hi))

    def float_arg(self) -> bytes:
        r = self.rng.random()
        if r < 0.08:
            return self.rng.choice(BAD_FLOATS)
        if r < 0.2:
            return self.rng.choice(
                [b"1e308", b"-1e308", b"5e-324", b"0.1", b"1.0e2", b"-0", b"3", b"+2.5", b"1e-5"]
            )
        return b(round(self.rng.uniform(-100, 100), self.rng.randint(0, 4)))

    def unit(self) -> int:
        return self.rng.randint(1, 50)

    def rel_s(self) -> bytes:
        """A relative expire in seconds: future (spaced), zero, negative or invalid."""
        r = self.rng.random()
        if r < 0.08:
            return self.rng.choice([b"0", b"-5"])
        if r < 0.13:
            return self.rng.choice(
                BAD_INTS + [b"9223372036854775807", b"-9223372036854775808", b"9223372036854776"]
            )
        return b(self.unit() * UNIT_S + self.index)

    def rel_ms(self) -> bytes:
        r = self.rng.random()
        if r < 0.08:
            return self.rng.choice([b"0", b"-5"])
        if r < 0.13:
            return self.rng.choice(BAD_INTS + [b"9223372036854775807", b"-9223372036854775808"])
        return b((self.unit() * UNIT_S + self.index) * 1000)

    def abs_s(self) -> bytes:
        r = self.rng.random()
        if r < 0.08:
            return self._past(b(self.base_s - self.rng.randint(1, 10000)))
        if r < 0.11:
            return self.rng.choice([b"0", b"-1", b"abc", b"9223372036854775807"])
        return b(self.base_s + self.unit() * UNIT_S + ABSOLUTE_OFFSET_S)

    def abs_ms(self) -> bytes:
        r = self.rng.random()
        if r < 0.08:
            return self._past(b((self.base_s - self.rng.randint(1, 10000)) * 1000))
        if r < 0.11:
            return self.rng.choice([b"0", b"-1", b"abc", b"9223372036854775807"])
        return b((self.base_s + self.unit() * UNIT_S + ABSOLUTE_OFFSET_S) * 1000)

    def _past(self, when: bytes) -> bytes:
        self.past.add(when)
        return when

    def db(self) -> bytes:
        if self.rng.random() < 0.1:
            return self.rng.choice([b"16", b"-1", b"x", b"99999999999999999999"])
        return b(self.rng.randrange(DBS))

    # -- sequencing -------------------------------------------------------------------

    def next(self) -> Op:
        assert self.index < COMMANDS_MAX, "expiry spacing assumes fewer commands per seed"
        if self.follow_up:
            op = self.follow_up.pop()
        elif self.in_multi and self.rng.random() < 0.15:  # transactions of ~6 commands
            op = op_transaction(self)
        else:
            op = self._pick()
        self.index += 1
        name = op.argv[0].lower() if op.argv else b""
        if name == b"multi":
            if len(op.argv) == 1 and not self.in_multi:  # a nested MULTI changes nothing
                self.in_multi, self.queued = True, []
        elif name == b"exec" and self.in_multi:  # EXEC with arguments aborts it too
            op.mode, op.queued = "exec", self.queued
            self.in_multi, self.queued = False, []
        elif name == b"discard" and self.in_multi:
            if len(op.argv) == 1:  # DISCARD with arguments is refused (and flags EXECABORT)
                self.in_multi, self.queued = False, []
        elif self.in_multi and name != b"watch":  # WATCH inside MULTI is refused
            self.queued.append(op)
        return op

    def finish(self) -> list[Op]:
        """What must still run after the last random command: pending follow-ups, then
        EXEC of an open transaction."""
        ops: list[Op] = []
        while self.follow_up:
            ops.append(self.next())
        if self.in_multi:
            ops.append(Op([b"EXEC"], "exec", self.queued))
            self.in_multi, self.queued = False, []
        return ops

    def _pick(self) -> Op:
        x = self.rng.random() * self.total_weight
        for weight, make in self.table:
            x -= weight
            if x < 0:
                return make(self)
        return self.table[-1][1](self)


# -- op builders: one per command (or family), each ``(g) -> Op`` --------------------


def _op(*args: object, mode: str = "exact") -> Op:
    return Op([b(a) for a in args], mode)


SET_OPTIONS = ["NX", "XX", "GET", "KEEPTTL", "EX", "PX", "EXAT", "PXAT"]


def op_set(g: Generator) -> Op:
    argv: list[object] = ["SET", g.skey(), g.value()]
    options = g.rng.sample(SET_OPTIONS, g.rng.choice([0, 0, 1, 1, 2, 3]))
    if options and g.rng.random() < 0.05:
        options.append(g.rng.choice(options))  # repeated: accepted, the last one counts
    for opt in options:
        argv.append(opt.lower() if g.rng.random() < 0.2 else opt)
        if opt == "EX":
            argv.append(g.rel_s())
        elif opt == "PX":
            argv.append(g.rel_ms())
        elif opt == "EXAT":
            argv.append(g.abs_s())
        elif opt == "PXAT":
            argv.append(g.abs_ms())
    if g.rng.random() < 0.04:
        argv.append(g.rng.choice(["EX", "FOO", "PX", "10"]))  # dangling or unknown option
    if any(a in g.past for a in argv[3:]):
        # SET with a past EXAT/PXAT stores a key that is already expired; which server's
        # active expiry removes it first is timing, so make both remove it now.
        g.follow_up.append(_op("EXISTS", argv[1]))
    return _op(*argv)


def op_string_simple(g: Generator) -> Op:
    name = g.rng.choice(["GET", "GETDEL", "STRLEN", "INCR", "DECR", "SETNX", "GETSET", "APPEND"])
    if name in ("SETNX", "GETSET", "APPEND"):
        return _op(name, g.skey(), g.value())
    return _op(name, g.skey())


def op_setex(g: Generator) -> Op:
    if g.rng.random() < 0.5:
        return _op("SETEX", g.skey(), g.rel_s(), g.value())
    return _op("PSETEX", g.skey(), g.rel_ms(), g.value())


def op_getex(g: Generator) -> Op:
    argv: list[object] = ["GETEX", g.skey()]
    choice = g.rng.choice(["", "EX", "PX", "EXAT", "PXAT", "PERSIST", "bad"])
    if choice == "EX":
        argv += ["EX", g.rel_s()]
    elif choice == "PX":
        argv += ["PX", g.rel_ms()]
    elif choice == "EXAT":
        argv += ["EXAT", g.abs_s()]
    elif choice == "PXAT":
        argv += ["PXAT", g.abs_ms()]
    elif choice == "PERSIST":
        argv.append("PERSIST")
    elif choice == "bad":
        argv += g.rng.choice([["EX"], ["PERSIST", "EX", "100"], ["EX", "100", "PX", "100"], ["X"]])
    return _op(*argv)


def op_mget_mset(g: Generator) -> Op:
    name = g.rng.choice(["MGET", "MSET", "MSETNX"])
    if name == "MGET":
        return _op("MGET", *[g.key() for _ in range(g.rng.randint(1, 4))])
    pairs: list[object] = []
    for _ in range(g.rng.randint(1, 3)):
        pairs += [g.skey(), g.value()]
    if g.rng.random() < 0.05:
        pairs.pop()  # odd: wrong number of arguments
    return _op(name, *pairs)


def op_incrby(g: Generator) -> Op:
    name = g.rng.choice(["INCRBY", "DECRBY", "INCRBYFLOAT"])
    arg = g.float_arg() if name == "INCRBYFLOAT" else g.int_arg(-1000, 1000)
    return _op(name, g.skey(), arg)


def op_range(g: Generator) -> Op:
    name = g.rng.choice(["GETRANGE", "SUBSTR", "SETRANGE"])
    if name == "SETRANGE":
        offset = g.rng.choice([g.int_arg(0, 80), b"-1", b"536870912", b"1000"])
        return _op("SETRANGE", g.skey(), offset, g.rng.choice([g.value(), b""]))
    return _op(name, g.skey(), g.int_arg(-50, 50), g.int_arg(-50, 50))


def op_del(g: Generator) -> Op:
    name = g.rng.choice(["DEL", "UNLINK", "EXISTS", "TOUCH"])
    return _op(name, *g.keys())


def op_type(g: Generator) -> Op:
    return _op("TYPE", g.key())


def op_rename(g: Generator) -> Op:
    return _op(g.rng.choice(["RENAME", "RENAMENX"]), g.key(), g.key())


def op_copy(g: Generator) -> Op:
    argv: list[object] = ["COPY", g.key(), g.key()]
    if g.rng.random() < 0.5:
        argv += ["DB", g.db()]
    if g.rng.random() < 0.4:
        argv.append("REPLACE")
    if g.rng.random() < 0.03:
        argv.append("BOGUS")
    return _op(*argv)


def op_move(g: Generator) -> Op:
    return _op("MOVE", g.key(), g.db())


def op_expire(g: Generator) -> Op:
    name = g.rng.choice(["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"])
    when = {"EXPIRE": g.rel_s, "PEXPIRE": g.rel_ms, "EXPIREAT": g.abs_s, "PEXPIREAT": g.abs_ms}
    argv: list[object] = [name, g.key(), when[name]()]
    r = g.rng.random()
    if r < 0.5:
        argv.append(g.rng.choice(["NX", "XX", "GT", "LT", "gt"]))
    elif r < 0.56:
        argv += g.rng.choice([["NX", "XX"], ["GT", "LT"], ["NX", "GT"], ["FOO"], ["XX", "XX"]])
    return _op(*argv)


def op_ttl(g: Generator) -> Op:
    name = g.rng.choice(["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME", "PERSIST"])
    mode = {"TTL": "ttl_s", "PTTL": "ttl_ms", "EXPIRETIME": "abs_s", "PEXPIRETIME": "abs_ms"}
    return _op(name, g.key(), mode=mode.get(name, "exact"))


def op_object(g: Generator) -> Op:
    r = g.rng.random()
    if r < 0.85 and not g.in_multi:  # the test reads the value back to check an encoding
        return _op("OBJECT", "ENCODING", g.key(), mode="encoding")
    if r < 0.92:
        return _op("OBJECT", "FREQ", g.key())
    return _op("OBJECT", g.rng.choice(["NOSUCH", "ENCODING"]))


def op_db(g: Generator) -> Op:
    r = g.rng.random()
    if r < 0.3:
        return _op("DBSIZE")
    if r < 0.6:
        pattern = g.rng.choice([b"*", b"s*", b"?1", b"[hs]?", b"*{k}*", b"h[^1]", b"mi\\x2"])
        return _op("KEYS", pattern, mode="sorted")
    if r < 0.8:
        return _op("SELECT", g.db())
    if r < 0.95:
        return _op("SWAPDB", g.db(), g.db())
    return _op("FLUSHDB", *g.rng.choice([[], ["ASYNC"], ["SYNC"]]))


def op_hset(g: Generator) -> Op:
    name = g.rng.choice(["HSET", "HSET", "HMSET", "HSETNX"])
    if name == "HSETNX":
        return _op(name, g.hkey(), g.field(), g.value())
    pairs: list[object] = []
    for _ in range(g.rng.randint(1, 3)):
        pairs += [g.field(), g.value()]
    if g.rng.random() < 0.05:
        pairs.pop()
    return _op(name, g.hkey(), *pairs)


def op_hread(g: Generator) -> Op:
    name = g.rng.choice(
        ["HGET", "HMGET", "HDEL", "HEXISTS", "HGETALL", "HKEYS", "HVALS", "HLEN", "HSTRLEN"]
    )
    key = g.hkey()
    if name in ("HGET", "HEXISTS", "HSTRLEN"):
        return _op(name, key, g.field())
    if name in ("HMGET", "HDEL"):
        return _op(name, key, *[g.field() for _ in range(g.rng.randint(1, 3))])
    mode = {"HGETALL": "pairs", "HKEYS": "sorted", "HVALS": "sorted"}.get(name, "exact")
    return _op(name, key, mode=mode)


def op_hincr(g: Generator) -> Op:
    if g.rng.random() < 0.5:
        return _op("HINCRBY", g.hkey(), g.field(), g.int_arg(-1000, 1000))
    return _op("HINCRBYFLOAT", g.hkey(), g.field(), g.float_arg())


def op_transaction(g: Generator) -> Op:
    r = g.rng.random()
    if g.in_multi:
        if r < 0.45:
            return _op("EXEC")
        if r < 0.6:
            return _op("DISCARD")
        if r < 0.75:
            return _op("MULTI")  # nested: an error that does not abort the transaction
        return _op("WATCH", g.key())  # refused inside MULTI
    if r < 0.45:
        return _op("MULTI")
    if r < 0.75:
        return _op("WATCH", *g.keys(1, 2))
    if r < 0.85:
        return _op("UNWATCH")
    return _op(g.rng.choice(["EXEC", "DISCARD"]))  # without MULTI


# name:arity in Redis's convention: N exact, -N at least N (the name counts).
_ARITY_TABLE = """
    GET:2 SET:-3 SETNX:3 SETEX:4 PSETEX:4 GETSET:3 GETDEL:2 GETEX:-2 MGET:-2 MSET:-3 MSETNX:-3
    INCR:2 DECR:2 INCRBY:3 DECRBY:3 INCRBYFLOAT:3 APPEND:3 STRLEN:2 GETRANGE:4 SETRANGE:4
    SUBSTR:4 DEL:-2 UNLINK:-2 EXISTS:-2 TYPE:2 TOUCH:-2 RENAME:3 RENAMENX:3 COPY:-3 MOVE:3
    EXPIRE:-3 PEXPIRE:-3 EXPIREAT:-3 PEXPIREAT:-3 TTL:2 PTTL:2 EXPIRETIME:2 PERSIST:2 DBSIZE:1
    KEYS:2 SELECT:2 SWAPDB:3 HSET:-4 HSETNX:4 HGET:3 HMGET:-3 HMSET:-4 HDEL:-3 HEXISTS:3
    HGETALL:2 HKEYS:2 HVALS:2 HLEN:2 HSTRLEN:3 HINCRBY:4 HINCRBYFLOAT:4 MULTI:1 EXEC:1
    DISCARD:1 WATCH:-2 UNWATCH:1 OBJECT:-2
"""
ARITIES = [(name, int(arity)) for name, arity in (x.split(":") for x in _ARITY_TABLE.split())]


def op_bad(g: Generator) -> Op:
    r = g.rng.random()
    if r < 0.15:
        return _op(g.rng.choice(["NOSUCHCMD", "GETT", "hsett"]), g.key())
    name, arity = g.rng.choice(ARITIES)
    if arity > 0:
        wrong = [n for n in (arity - 1, arity + 1, arity + 2) if n >= 1]
    else:
        wrong = list(range(1, -arity))
    argc = g.rng.choice(wrong or [1])
    return _op(name, *[g.key() for _ in range(argc - 1)])


def op_scan(g: Generator) -> Op:
    """A whole SCAN iteration (the runner follows the cursor); the union is compared."""
    if g.in_multi:
        return op_type(g)
    argv: list[object] = ["SCAN", "0"]
    if g.rng.random() < 0.5:
        argv += ["MATCH", g.rng.choice(["*", "s*", "h?", "*mix*"])]
    if g.rng.random() < 0.4:
        argv += ["COUNT", g.rng.choice(["1", "3", "100"])]
    if g.rng.random() < 0.4:
        argv += ["TYPE", g.rng.choice(["string", "hash", "list", "nosuchtype"])]
    return Op([b(a) for a in argv], "scan")


OPS: list[tuple[float, Callable[[Generator], Op]]] = [
    (10, op_set),
    (10, op_string_simple),
    (3, op_setex),
    (3, op_getex),
    (4, op_mget_mset),
    (5, op_incrby),
    (4, op_range),
    (4, op_del),
    (2, op_type),
    (3, op_rename),
    (2, op_copy),
    (2, op_move),
    (6, op_expire),
    (5, op_ttl),
    (3, op_object),
    (3, op_db),
    (9, op_hset),
    (9, op_hread),
    (4, op_hincr),
    (4, op_transaction),
    (3, op_bad),
    (1, op_scan),
]
