"""EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT: Lua scripts (Redis 7.2's rules).

Owns: the script cache (by SHA1 of the body; it survives nothing, as Redis's: EVALSHA
after a restart answers -NOSCRIPT), shebang flags (``no-writes`` makes a script
read-only, as ``*_RO`` does), the checks before a script runs, and SCRIPT LOAD / EXISTS /
FLUSH / KILL / HELP. Running is ``script_run.execute``.
"""

from __future__ import annotations

import hashlib

from ..engine.client import Client
from ..engine.core import CommandError
from ..resp import encoder as enc
from ..scripting import shebang
from .script_run import (
    BUSY_EVAL,
    BUSY_FUNCTION,
    KEY_COUNTS,
    SCRIPT_CACHE_MAX,
    CachedScript,
    ScriptState,
    execute,
    numkeys,
    state,
    write_refusal,
)
from .table import handler

NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."


def cache_script(st: ScriptState, body: bytes) -> CachedScript:
    """Compile ``body`` into the cache (or find it there); CommandError when it fails."""
    sha = hashlib.sha1(body).hexdigest()
    key = sha.encode()
    cached = st.cache.get(key)
    if cached is not None:
        return cached
    try:
        header = shebang.script_header(body)
    except shebang.HeaderError as e:
        raise CommandError(str(e)) from None
    try:
        fn = st.vm.compile(header.body)
    except ValueError as e:
        raise CommandError(f"ERR Error compiling script (new function): {e}") from None
    if len(st.cache) >= SCRIPT_CACHE_MAX:
        del st.cache[next(iter(st.cache))]
    cached = st.cache[key] = CachedScript(sha, body, fn, header.flags, header.has_shebang)
    return cached


def _run(c: Client, st: ScriptState, argv: list[bytes], cached: CachedScript, ro: bool) -> bytes:
    n = numkeys(argv)
    readonly = ro or cached.no_writes
    if cached.has_shebang and not readonly:
        # A script that declares it may write is refused before it runs where writes are.
        refused = write_refusal(c.server, c)
        if refused is not None:
            raise CommandError(refused)
    return execute(c, st.eval_vm or st.vm, cached.fn, cached.sha, readonly, False, argv, n)


def _eval(c: Client, argv: list[bytes], ro: bool) -> bytes:
    st = state(c.server)
    numkeys(argv)  # the count is checked before the body compiles (Redis)
    return _run(c, st, argv, cache_script(st, argv[1]), ro)


def _evalsha(c: Client, argv: list[bytes], ro: bool) -> bytes:
    st = c.server.scripting or state(c.server)
    cached = st.cache.get(argv[1])  # the common case: lowercase hex, as SCRIPT LOAD gives
    if cached is None:
        sha = argv[1].lower()
        cached = st.cache.get(sha) if len(sha) == 40 else None
        if cached is None:
            numkeys(argv)
            raise CommandError(NOSCRIPT)
    return _run(c, st, argv, cached, ro)


@handler("eval")
def eval_(c: Client, argv: list[bytes]) -> bytes:
    return _eval(c, argv, False)


@handler("eval_ro")
def eval_ro(c: Client, argv: list[bytes]) -> bytes:
    return _eval(c, argv, True)


@handler("evalsha")
def evalsha(c: Client, argv: list[bytes]) -> bytes:
    # _evalsha's common case (a cached script without a shebang) in one frame.
    st: ScriptState | None = c.server.scripting  # (typed: compiled, read natively)
    if st is None:
        return _evalsha(c, argv, False)
    cached = st.cache.get(argv[1])
    if cached is None or cached.has_shebang:
        return _evalsha(c, argv, False)
    n = KEY_COUNTS.get(argv[2])
    if n is None or n > len(argv) - 3:
        n = numkeys(argv)
    return execute(c, st.eval_vm or st.vm, cached.fn, cached.sha, cached.no_writes, False, argv, n)


@handler("evalsha_ro")
def evalsha_ro(c: Client, argv: list[bytes]) -> bytes:
    return _evalsha(c, argv, True)


# -- SCRIPT ------------------------------------------------------------------------------


@handler("script|load")
def script_load(c: Client, argv: list[bytes]) -> bytes:
    return enc.bulk(cache_script(state(c.server), argv[2]).sha.encode())


@handler("script|exists")
def script_exists(c: Client, argv: list[bytes]) -> bytes:
    cache = state(c.server).cache
    return enc.array([b":1\r\n" if a.lower() in cache else b":0\r\n" for a in argv[2:]])


@handler("script|flush")
def script_flush(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"sync", b"async")):
        raise CommandError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    state(c.server).flush_scripts()
    return enc.OK


@handler("script|kill")
def script_kill(c: Client, argv: list[bytes]) -> bytes:
    return kill(c, False)


def kill(c: Client, by_function_kill: bool) -> bytes:
    """SCRIPT KILL / FUNCTION KILL."""
    st = c.server.scripting
    run = st.running if st is not None else None
    if run is None:
        raise CommandError("NOTBUSY No scripts in execution right now.")
    if run.is_function != by_function_kill:
        # The other kind of KILL: the running script's -BUSY text says which to use.
        raise CommandError(BUSY_FUNCTION if run.is_function else BUSY_EVAL)
    run.kill(by_function_kill)
    return enc.OK


@handler("script|debug")
def script_debug(c: Client, argv: list[bytes]) -> bytes:
    if argv[2].lower() == b"no":
        return enc.OK
    raise CommandError("ERR SCRIPT DEBUG is not supported by ackdb (no Lua debugger)")


_SCRIPT_HELP = [
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Print this help.",
]


@handler("script|help")
def script_help(c: Client, argv: list[bytes]) -> bytes:
    return enc.array([enc.simple(s) for s in _SCRIPT_HELP])
