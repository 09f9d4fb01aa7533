"""FUNCTION and FCALL / FCALL_RO: Redis 7 functions.

Owns: the FUNCTION subcommands over the engine's ``scripting.functions.Registry`` (LOAD
[REPLACE], LIST [LIBRARYNAME p] [WITHCODE], DELETE, FLUSH, DUMP, RESTORE
[FLUSH|APPEND|REPLACE], STATS, KILL, HELP) and FCALL's checks before a function runs
(``*_RO`` needs a ``no-writes`` function; a function that may write is refused on a
replica). FUNCTION LOAD / DELETE / FLUSH / RESTORE are write commands: they move
``dirty``, so they reach the AOF and replicas as sent. ``library_codes`` and
``restore_libraries`` let the persistence shell save libraries with the dataset.
"""

from __future__ import annotations

from ..engine.client import Client
from ..engine.core import CommandError, Server
from ..keyspace.glob import glob_match
from ..resp import encoder as enc
from ..scripting import shebang
from ..scripting.functions import FunctionError, Library
from .script_run import KEY_COUNTS, ScriptState, execute, numkeys, state, write_refusal
from .scripting import kill
from .table import handler


def library_codes(srv: Server) -> list[bytes]:
    """The code of every library, in load order (snapshots, AOF rewrites, full syncs)."""
    st = srv.scripting
    return [] if st is None else st.registry.codes()


def restore_libraries(srv: Server, codes: list[bytes]) -> None:
    """Replace every library with ``codes`` (a loaded dataset's); ValueError if one fails."""
    reg = state(srv).registry
    reg.flush()
    for code in codes:
        try:
            reg.load(code, False)
        except FunctionError as e:
            raise ValueError(f"a function library cannot be loaded: {e}") from None


def _fail(e: FunctionError) -> CommandError:
    return CommandError(str(e))


@handler("function|load")
def function_load(c: Client, argv: list[bytes]) -> bytes:
    replace = False
    if len(argv) == 4:
        if argv[2].lower() != b"replace":
            raise CommandError(f"ERR Unknown option given: {argv[2].decode('utf-8', 'replace')}")
        replace = True
    elif len(argv) > 4:
        raise CommandError("ERR Unknown option given: " + argv[3].decode("utf-8", "replace"))
    try:
        name = state(c.server).registry.load(argv[-1], replace, c.server.clock.perf_ns)
    except FunctionError as e:
        raise _fail(e) from None
    c.server.dirty += 1
    return enc.bulk(name.encode())


@handler("function|delete")
def function_delete(c: Client, argv: list[bytes]) -> bytes:
    try:
        state(c.server).registry.delete(argv[2].decode("utf-8", "replace"))
    except FunctionError as e:
        raise _fail(e) from None
    c.server.dirty += 1
    return enc.OK


@handler("function|flush")
def function_flush(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"sync", b"async")):
        raise CommandError("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    state(c.server).registry.flush()
    c.server.dirty += 1
    return enc.OK


@handler("function|dump")
def function_dump(c: Client, argv: list[bytes]) -> bytes:
    return enc.bulk(state(c.server).registry.dump())


@handler("function|restore")
def function_restore(c: Client, argv: list[bytes]) -> bytes:
    policy = "append"
    if len(argv) == 4:
        word = argv[3].lower()
        if word not in (b"flush", b"append", b"replace"):
            raise CommandError(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
            )
        policy = word.decode()
    elif len(argv) > 4:
        raise CommandError("ERR syntax error")
    try:
        state(c.server).registry.restore(argv[2], policy)
    except FunctionError as e:
        raise _fail(e) from None
    c.server.dirty += 1
    return enc.OK


def _function_entry(c: Client, lib: Library, with_code: bool) -> bytes:
    p = c.p
    funcs = []
    for f in lib.functions.values():
        flags = [enc.simple(x) for x in shebang.FLAGS if x in f.flags]
        funcs.append(
            p.map_encoded(
                [
                    (enc.bulk(b"name"), enc.bulk(f.name.encode())),
                    (enc.bulk(b"description"), p.bulk_or_null(f.description)),
                    (enc.bulk(b"flags"), p.set_header(len(flags)) + b"".join(flags)),
                ]
            )
        )
    pairs = [
        (enc.bulk(b"library_name"), enc.bulk(lib.name.encode())),
        (enc.bulk(b"engine"), enc.bulk(b"LUA")),
        (enc.bulk(b"functions"), enc.array(funcs)),
    ]
    if with_code:
        pairs.append((enc.bulk(b"library_code"), enc.bulk(lib.code)))
    return p.map_encoded(pairs)


@handler("function|list")
def function_list(c: Client, argv: list[bytes]) -> bytes:
    pattern: bytes | None = None
    with_code = False
    i = 2
    while i < len(argv):
        word = argv[i].lower()
        if word == b"withcode" and not with_code:
            with_code = True
        elif word == b"libraryname" and pattern is None and i + 1 < len(argv):
            i += 1
            pattern = argv[i]
        else:
            raise CommandError(f"ERR Unknown argument {argv[i].decode('utf-8', 'replace')}")
        i += 1
    libs = state(c.server).registry.libraries.values()
    out = [
        _function_entry(c, lib, with_code)
        for lib in libs
        if pattern is None or glob_match(pattern, lib.name.encode())
    ]
    return enc.array(out)


@handler("function|stats")
def function_stats(c: Client, argv: list[bytes]) -> bytes:
    p = c.p
    st = state(c.server)
    run = st.running
    if run is None or not run.is_function:
        running = p.null
    else:
        running = p.map_encoded(
            [
                (enc.bulk(b"name"), enc.bulk(run.name.encode())),
                (enc.bulk(b"command"), enc.bulk_array(run.argv)),
                (enc.bulk(b"duration_ms"), b":%d\r\n" % run.duration_ms()),
            ]
        )
    reg = st.registry
    lua = p.map_encoded(
        [
            (enc.bulk(b"libraries_count"), b":%d\r\n" % len(reg.libraries)),
            (enc.bulk(b"functions_count"), b":%d\r\n" % len(reg.functions)),
        ]
    )
    engines = p.map_encoded([(enc.bulk(b"LUA"), lua)])
    return p.map_encoded([(enc.bulk(b"running_script"), running), (enc.bulk(b"engines"), engines)])


@handler("function|kill")
def function_kill(c: Client, argv: list[bytes]) -> bytes:
    return kill(c, True)


_FUNCTION_HELP = [
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME",
    "    argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored",
    "    using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give",
    "    a restore policy to control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision,",
    "              abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision,",
    "              replace the old libraries with the new libraries (notice that even on",
    "              this option there is a chance of failure in case of functions name",
    "              collision with another library).",
    "HELP",
    "    Print this help.",
]


@handler("function|help")
def function_help(c: Client, argv: list[bytes]) -> bytes:
    return enc.array([enc.simple(s) for s in _FUNCTION_HELP])


# -- FCALL -------------------------------------------------------------------------------


@handler("fcall")
def fcall(c: Client, argv: list[bytes], ro: bool = False) -> bytes:
    srv = c.server
    st: ScriptState = srv.scripting or state(srv)
    n = KEY_COUNTS.get(argv[2])
    if n is None or n > len(argv) - 3:
        n = numkeys(argv)
    name = argv[1].decode("utf-8", "replace")
    f = st.registry.functions.get(name)
    if f is None:
        raise CommandError("ERR Function not found")
    no_writes = shebang.NO_WRITES in f.flags
    if ro and not no_writes:
        raise CommandError("ERR Can not execute a script with write flag using *_ro command.")
    if not no_writes:
        refused = write_refusal(srv, c)
        if refused is not None:
            raise CommandError(refused)
    vm = st.registry.vm
    assert vm is not None  # a function exists, so its state does
    return execute(c, vm, f.callback, name, ro or no_writes, True, argv, n)


@handler("fcall_ro")
def fcall_ro(c: Client, argv: list[bytes]) -> bytes:
    return fcall(c, argv, True)
