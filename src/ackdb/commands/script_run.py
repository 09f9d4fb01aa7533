"""Running a script or a function inside the engine: the engine's side of ``scripting``.

Owns: ``ScriptState`` (one per engine: EVAL's Lua state and script cache, the function
registry, the script client, the script running now) and ``ScriptRun`` (the bridge a
running script calls: ``redis.call`` / ``redis.pcall`` checked as Redis checks a
script's command — unknown, arity, ``noscript``, writes from read-only scripts, writes on
a replica or while writes are refused — then run through the engine's ``call`` with the
script client, whose reply is converted to Lua). A script's writes are one transaction's
effects (``begin_transaction_effects``): they reach the AOF and replicas as the commands
run, wrapped in MULTI/EXEC when more than one (Redis 7's effects replication).

Busy scripts: Lua calls ``tick`` every ``prelude.HOOK_INSTRUCTIONS`` instructions; past
``busy-reply-threshold`` ms the engine turns busy (every command but the ``allow_busy``
ones is refused with -BUSY) and ``tick`` calls the shell's ``busy_pump``, which reads the
other clients' sockets and answers them, like Redis's processEventsWhileBlocked. SCRIPT
KILL / FUNCTION KILL (a script that wrote cannot be killed) and SHUTDOWN then stop the
script from inside the hook. Never touches sockets or the clock directly: time comes from
the engine's clock port.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..acl import DENIED_CMD, DENIED_KEY, OK
from ..commandtable import TABLE
from ..engine import access
from ..engine.blocking import BlockRequest
from ..engine.client import Client, NullConn
from ..engine.core import CommandError, Server
from ..engine.dispatch import Entry
from ..resp import encoder as enc
from ..resp.encoder import RESP2, RESP3
from ..scripting import convert, shebang
from ..scripting.functions import Registry
from ..scripting.vm import CallError, LuaVM, ScriptError

BUSY_EVAL = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
BUSY_FUNCTION = (
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
)
KILLED_EVAL = b"ERR Script killed by user with SCRIPT KILL..."
KILLED_FUNCTION = KILLED_EVAL  # Redis 7 says SCRIPT KILL for both
KILLED_SHUTDOWN = b"ERR Script killed by SHUTDOWN"
UNKILLABLE = (
    "UNKILLABLE Sorry the script already executed write commands against the dataset. You "
    "can either wait the script termination or kill the server in a hard way using the "
    "SHUTDOWN NOSAVE command."
)
# Most scripts kept in the script cache (Redis 7.2 has no limit for EVAL's scripts; this
# bounds memory: the oldest is dropped first).
SCRIPT_CACHE_MAX = 100_000
# The shell is asked to serve clients at most this often while a script is busy (ns).
PUMP_EVERY_NS = 2_000_000

_REPL_AOF, _REPL_REPLICA = 1, 2


class CachedScript:
    __slots__ = ("sha", "body", "fn", "flags", "has_shebang", "no_writes")

    def __init__(
        self, sha: str, body: bytes, fn: Any, flags: frozenset[str], has_shebang: bool
    ) -> None:
        self.sha = sha
        self.body = body
        self.fn = fn
        self.flags = flags
        self.has_shebang = has_shebang
        self.no_writes = shebang.NO_WRITES in flags


class ScriptState:
    """One engine's scripting state."""

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.eval_vm: LuaVM | None = None  # EVAL's Lua state, made at first use (``vm``)
        # By SHA1 as lowercase hex bytes (what EVALSHA sends, looked up without decoding).
        self.cache: dict[bytes, CachedScript] = {}
        self.registry = Registry()
        self.running: ScriptRun | None = None
        client = Client(0, srv, NullConn(), "", "", -1)
        client.kind = "lua"
        client.authenticated = True
        client.gate = False
        self.client = client
        # The commands a script may call that have no subcommands, by name as sent (both
        # cases): one lookup instead of the dispatch, subcommand and ``noscript`` checks.
        # The engine's table never changes once built.
        self.commands: dict[bytes, Entry] = {
            name: e
            for name, e in srv.dispatch.plain.items()
            if "noscript" not in e.flags and e.handler is not None
        }
        # The bridge of every run (one script runs at a time): bound once to each Lua
        # state as its redis.call / redis.pcall, one frame between Lua and the engine.
        self.run = ScriptRun(self)

    @property
    def vm(self) -> LuaVM:
        if self.eval_vm is None:
            self.eval_vm = LuaVM("eval")
        return self.eval_vm

    def flush_scripts(self) -> None:
        self.cache = {}
        self.eval_vm = None  # a fresh state, as Redis's SCRIPT FLUSH


def state(srv: Server) -> ScriptState:
    st = srv.scripting
    if st is None:
        st = srv.scripting = ScriptState(srv)
    return st  # type: ignore[no-any-return]


_NO_ARGS = b"ERR Please specify at least one argument for this redis lib call"
_BAD_ARG = b"ERR Lua redis lib command arguments must be strings or integers"
_UNKNOWN = b"ERR Unknown Redis command called from script"
_ARITY = b"ERR Wrong number of args calling Redis command from script"
_NOSCRIPT = b"ERR This Redis command is not allowed from script"


@dataclass(frozen=True, slots=True)
class _ScriptWrite:
    """A script that may write, as the replication engine's gate sees a write command."""

    name: str = "eval"
    write: bool = True
    stale_ok: bool = False


SCRIPT_WRITE = _ScriptWrite()


def write_refusal(srv: Server, c: Client, cmd: Any = SCRIPT_WRITE) -> str | None:
    """Why a write of a script run by ``c`` may not run here now, or None: the engine's
    gate for a write command (a read-only replica; a disk error; the replication
    engine's refusals -- NOREPLICAS, and a fenced primary's TRYAGAIN, which a script,
    unlike a plain write held until the first lease, cannot wait out: docs/fencing.md).
    Checked before a script that declares it may write runs, and at a script's first
    write command (``cmd``)."""
    master = c.kind == "master"
    # The engine only counts writes on a primary: no role to look up.
    if srv.count_only is None and srv.role_replica and not master:
        return "READONLY You can't write against a read only replica."
    if srv.write_denied is not None:
        return srv.write_denied
    repl = srv.repl
    if srv.repl_gated and repl is not None and not master:
        refusal = repl.refusal(c, cmd)
        if refusal is not None:
            return refusal.text
    return None


class ScriptRun:
    """The bridge of the running script or function (see ``scripting.vm.Bridge``): one
    per ``ScriptState``, reset by ``start`` for each run, so the Lua states' redis.call
    and redis.pcall are its bound methods (no allocation and no frame between)."""

    __slots__ = (
        "st",
        "srv",
        "client",
        "commands",
        "caller",
        "name",
        "readonly",
        "is_function",
        "argv",
        "wrote",
        "may_write",
        "killed",
        "busy",
        "repl_flags",
        "start_ns",
        "_next_pump_ns",
        "threshold_ns",
        "to_lua",
        "offset_before",
        "perf_ns",
    )
    to_lua: convert.ReplyToLua  # the running state's (set by ``execute``)

    def __init__(self, st: ScriptState) -> None:
        self.st = st
        self.srv = st.srv
        self.client = st.client
        self.commands = st.commands
        self.perf_ns = st.srv.clock.perf_ns
        self.start(st.client, "", True, False, [])

    def start(
        self, caller: Client, name: str, readonly: bool, is_function: bool, argv: list[bytes]
    ) -> None:
        """Begin a run of ``name`` for ``caller``."""
        self.caller = caller
        self.name = name
        self.readonly = readonly
        self.is_function = is_function
        self.argv = argv
        self.wrote = False
        # A write of this run passed ``_write_refusal``: later ones skip it, until the
        # shell serves other clients (``tick``), which may change what it checks.
        self.may_write = False
        self.killed: bytes | None = None
        self.busy = False
        self.repl_flags = 3
        self.start_ns = self.perf_ns()  # (the clock port's, read once at __init__)
        self._next_pump_ns = 0
        # Read at the first tick (most scripts end before one): busy-reply-threshold in ns.
        self.threshold_ns = -1
        # The replication offset before the first write command (-1: none yet): nothing
        # before it moves the offset (other effects are buffered until the script ends).
        self.offset_before = -1

    def duration_ms(self) -> int:
        return (self.srv.clock.perf_ns() - self.start_ns) // 1_000_000

    # -- redis.call / redis.pcall ------------------------------------------------------

    def call(self, raise_errors: bool, args: tuple[Any, ...]) -> Any:
        """``scripting.vm.Bridge.call``: ``redis_call`` or ``redis_pcall``."""
        return self.redis_call(*args) if raise_errors else self.redis_pcall(*args)

    def redis_pcall(self, *args: Any) -> Any:
        """``redis.pcall``: as ``redis_call``, an error reply returned as ``{err=...}``
        (no arguments at all is still raised, as Redis does)."""
        if not args:
            raise CallError(_NO_ARGS)
        try:
            return self.redis_call(*args)
        except CallError as e:
            return self.to_lua.err(e.text)

    def redis_call(self, *args: Any) -> Any:
        """``redis.call``: the reply of ``args`` as a Lua value; an error (the command's
        reply or the checks Redis makes of a script's command, in Redis's order) is
        raised as ``CallError``."""
        if not args:
            raise CallError(_NO_ARGS)
        for a in args:
            if type(a) is not bytes:  # (compiled: ``__class__`` is an attribute lookup)
                return self.redis_call(*_converted(args))
        argv = list(args)
        cmd = self.commands.get(argv[0])
        if cmd is None:
            cmd = self._lookup(argv)
        n = len(argv)
        if n < cmd.argc_min or n > cmd.argc_max:
            raise CallError(_ARITY)
        if self.caller.acl_limited:
            self._acl_check(cmd.spec, argv)
        srv = self.srv
        if cmd.write:
            if not self.may_write:
                self._write_check(cmd)
            if self.offset_before < 0:
                self.offset_before = _offset(srv)
            self.wrote = True
            if self.repl_flags != 3:
                mark = srv.effects_mark()
                reply = srv.call_unblocked(self.client, cmd, argv)
                srv.effects_trim(mark, self.repl_flags != 0, self.repl_flags == _REPL_REPLICA)
                return self._to_lua(reply)
        counter = srv.count_only
        if counter is None or srv.monitors:  # effects to build, or MONITOR: the engine's
            return self._to_lua(srv.call_unblocked(self.client, cmd, argv))
        # Server.call, inlined for the usual case (the engine only counts writes, nobody
        # monitors): one frame less a call. A change to one is made to the other. The
        # script client never tracks keys, and never blocks (a script is a transaction).
        sc = self.client
        dirty = srv.dirty
        perf_ns = self.perf_ns
        t0 = perf_ns()
        try:
            reply = cmd.handler(sc, argv)  # type: ignore[misc]
        except CommandError as e:
            reply = enc.error(e.msg)
            cmd.failed_calls += 1
            srv.count_error(reply)
        except BlockRequest as b:
            reply = b.now_reply
        except Exception as bug:  # (a name of its own: compiled, ``e`` is typed)
            reply = srv.internal_error(cmd, bug)
        ns = perf_ns() - t0
        cmd.hist[ns.bit_length()] += 1  # the call, counted by its duration
        cmd.nsec += ns
        sc.last_cmd = cmd.name
        if cmd.write and srv.dirty != dirty and srv.feeds:
            counter.master_repl_offset += 1  # inside the script's transaction: no woff
        sc.prop = None
        if ns >= srv.slowlog_ns:
            srv.slow_command(sc, cmd, argv, ns)
        # _to_lua, inlined.
        t = reply[0]
        if t == 0x24 and reply[1] != 0x2D:
            if reply[2] == 0x0D:  # a payload under 10 bytes: no search for the header's end
                return reply[4:-2]
            return reply[reply.index(b"\r\n") + 2 : -2]
        if t == 0x3A:
            return int(reply[1:-2])
        if t == 0x2D:
            raise CallError(reply[1:-2])
        if t == 0x2B:
            return self.to_lua.status(reply[1:-2])
        return self.to_lua.convert(reply)

    def _to_lua(self, reply: bytes) -> Any:
        """A command's reply as redis.call returns it (CallError for an error reply). The
        single-line replies inline (ReplyToLua.convert's first cases): a bulk string (the
        usual reply), an integer, an error, a status; the rest through the parser."""
        t = reply[0]
        if t == 0x24 and reply[1] != 0x2D:
            if reply[2] == 0x0D:
                return reply[4:-2]
            return reply[reply.index(b"\r\n") + 2 : -2]
        if t == 0x3A:
            return int(reply[1:-2])
        if t == 0x2D:
            raise CallError(reply[1:-2])
        if t == 0x2B:
            return self.to_lua.status(reply[1:-2])
        return self.to_lua.convert(reply)

    def _lookup(self, argv: list[bytes]) -> Entry:
        """A command outside ``commands``: its entry (CallError if a script may not run
        it)."""
        cmd = self.srv.dispatch.get(argv[0])
        if cmd is not None and cmd.subcommands and (cmd.handler is None or len(argv) >= 2):
            cmd = cmd.subcommands.get(argv[1].lower()) if len(argv) >= 2 else None
        if cmd is None:
            raise CallError(_UNKNOWN)
        if "noscript" in cmd.flags:
            if len(argv) < cmd.argc_min or len(argv) > cmd.argc_max:
                raise CallError(_ARITY)  # arity before noscript, Redis's order
            raise CallError(_NOSCRIPT)
        return cmd

    def _acl_check(self, spec: Any, argv: list[bytes]) -> None:
        """The caller's user checks what the script runs (ACL LOG context ``lua``), with
        Redis 7.0's texts (CallError when denied)."""
        caller = self.caller
        user = caller.user
        assert user is not None
        code, _ = user.check(spec, argv)
        if code == OK:
            return
        access.check(self.srv, caller, spec, argv, "lua")  # logs and counts it
        if code == DENIED_CMD:
            raise CallError(
                b"ERR The user executing the script can't run this command or subcommand"
            )
        if code == DENIED_KEY:
            raise CallError(
                b"ERR The user executing the script can't access at least one of the keys "
                b"mentioned in the command arguments"
            )
        raise CallError(
            b"ERR The user executing the script can't publish to the channel mentioned in "
            b"the command"
        )

    def _write_check(self, cmd: Entry) -> None:
        """A write from this run: CallError where it is refused, else later writes skip
        the check (``may_write``)."""
        if self.readonly:
            raise CallError(b"ERR Write commands are not allowed from read-only scripts.")
        refused = write_refusal(self.srv, self.caller, cmd)
        if refused is not None:
            raise CallError(refused.encode())
        self.may_write = True

    # -- the rest of the redis.* API ---------------------------------------------------

    def log(self, level: int, msg: bytes) -> None:
        log = self.srv.log
        if log is None:
            return
        text = msg.decode("utf-8", "replace")
        if level >= 3:
            log.warning(text)
        elif level == 2:
            log.notice(text)
        # LOG_DEBUG and LOG_VERBOSE: below the engine log port's levels, not written.

    def setresp(self, version: int) -> None:
        sc = self.st.client
        sc.resp = version
        sc.p = RESP3 if version == 3 else RESP2

    def set_repl(self, flags: Any) -> bytes | None:
        if not isinstance(flags, int) or not 0 <= flags <= 3:
            return (
                b"ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."
            )
        # REPL_AOF alone (the AOF without the replicas) is kept as REPL_ALL: the engine's
        # effects feed both together.
        self.repl_flags = 3 if flags == _REPL_AOF else flags
        return None

    def acl_check_cmd(self, args: tuple[Any, ...]) -> tuple[int, Any]:
        argv = [convert.arg_bytes(a) for a in args]
        if not argv or any(a is None for a in argv):
            return 2, b"ERR Please specify at least one argument for this redis lib call"
        if self.srv.dispatch.get(argv[0]) is None:  # type: ignore[arg-type]
            return 2, b"ERR Invalid command passed to redis.acl_check_cmd()"
        user = self.caller.user
        spec = TABLE.find(argv)  # type: ignore[arg-type]
        if user is None or spec is None:
            return 0, True
        return 0, user.check(spec, argv)[0] == OK  # type: ignore[arg-type]

    def register_function(self, args: tuple[Any, ...]) -> None:
        raise ValueError("redis.register_function can only be called on FUNCTION LOAD command")

    # -- busy scripts ------------------------------------------------------------------

    def tick(self) -> bytes | None:
        srv = self.srv
        if self.killed is None and srv.shutdown_requested is not None:
            self.killed = KILLED_SHUTDOWN
        if self.killed is not None:
            return self.killed
        now = srv.clock.perf_ns()
        if self.threshold_ns < 0:
            ms = srv.config.get("busy-reply-threshold")
            self.threshold_ns = ms * 1_000_000 if ms > 0 else 1 << 62
        if not self.busy and now - self.start_ns >= self.threshold_ns:
            self.busy = True
            srv.set_busy(BUSY_FUNCTION if self.is_function else BUSY_EVAL, self.caller)
            if srv.log is not None:
                what = "function" if self.is_function else "script"
                srv.log.warning(
                    f"Slow {what} detected: still in execution after "
                    f"{(now - self.start_ns) // 1_000_000} milliseconds. You can try killing "
                    f"the script using the {'FUNCTION' if self.is_function else 'SCRIPT'} "
                    "KILL command."
                )
        if self.busy and now >= self._next_pump_ns and srv.busy_pump is not None:
            self._next_pump_ns = now + PUMP_EVERY_NS
            self.may_write = False  # other clients' commands may change what it checked
            srv.busy_pump()  # may run SCRIPT KILL / FUNCTION KILL: it sets ``killed``
            if srv.shutdown_requested is not None:
                self.killed = KILLED_SHUTDOWN
        return self._kill_reason()

    def _kill_reason(self) -> bytes | None:
        """``killed`` read afresh: after ``tick``'s early return mypy narrows it to None,
        and compiled (mypyc), that narrowed read would never see a SCRIPT KILL."""
        return self.killed

    def kill(self, by_function_kill: bool) -> None:
        """SCRIPT KILL / FUNCTION KILL of this run (checks done by the caller)."""
        if self.wrote:
            raise CommandError(UNKILLABLE)
        self.killed = KILLED_FUNCTION if by_function_kill else KILLED_EVAL


def _converted(args: tuple[Any, ...]) -> list[bytes]:
    """redis.call's arguments with numbers written as Redis writes them (CallError for
    other types)."""
    argv = []
    for a in args:
        b = convert.arg_bytes(a)
        if b is None:
            raise CallError(_BAD_ARG)
        argv.append(b)
    return argv


def _offset(srv: Server) -> int:
    """The replication offset; the write counter itself while the engine only counts
    writes (the same number as ``master_repl_offset``, without its two properties)."""
    counter = srv.count_only
    if counter is not None:
        return counter.master_repl_offset
    return srv.master_repl_offset


def execute(
    c: Client,
    vm: LuaVM,
    fn: Any,
    name: str,
    readonly: bool,
    is_function: bool,
    argv: list[bytes],
    nkeys: int,
) -> bytes:
    """Run ``fn`` (a script or a function named ``name``) for ``c``, called with ``argv``
    (EVAL's or FCALL's: ``nkeys`` keys from ``argv[3]``, checked by ``numkeys``); the
    encoded reply (CommandError for a script's error)."""
    srv = c.server
    st: ScriptState = srv.scripting  # (typed: compiled, its attributes are read natively)
    run = st.run
    assert st.running is None, "one script runs at a time"
    run.start(c, name, readonly, is_function, argv)
    if vm.calls_owner is not run:
        vm.bind_calls(run, run.redis_call, run.redis_pcall)
    run.to_lua = vm.to_lua
    sc = run.client
    sc.db = c.db
    sc.resp = 2
    sc.p = RESP2
    vm.bridge = run
    st.running = run
    srv.begin_transaction_effects()
    try:
        result = vm.run(fn, is_function, nkeys, argv[3:], name)
        if type(result) is bytes:  # to_resp's first case, inline
            reply = b"$%d\r\n%s\r\n" % (len(result), result)
        else:
            reply = convert.to_resp(result, c.resp == 3, 0, sc.resp == 3)
    except ScriptError as e:
        raise CommandError(e.reply[1:-2].decode("utf-8", "replace")) from None
    finally:
        vm.bridge = None
        st.running = None
        if run.killed is KILLED_SHUTDOWN:
            srv.discard_transaction_effects()
        before = run.offset_before
        if before < 0 and srv.effects_mark():
            before = _offset(srv)  # effects of reads (expired keys) only
        srv.end_transaction_effects()
        if run.busy:
            srv.set_busy(None)
    if before >= 0:
        counter = srv.count_only  # _offset, inlined: a writing script's every call
        after = counter.master_repl_offset if counter is not None else srv.master_repl_offset
        if after != before:
            c.woff = after  # the wrapped effects went out just now
    return reply


# The usual key counts as sent, looked up without ``numkeys``'s frame and int().
KEY_COUNTS = {b"%d" % i: i for i in range(10)}


def numkeys(argv: list[bytes]) -> int:
    """The key count of ``EVAL body numkeys key... arg...`` (and FCALL's), checked."""
    try:
        n = int(argv[2])
    except ValueError:
        raise CommandError("ERR value is not an integer or out of range") from None
    if n < 0:
        raise CommandError("ERR Number of keys can't be negative")
    if n > len(argv) - 3:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    return n
