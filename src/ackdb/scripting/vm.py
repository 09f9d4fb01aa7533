"""One sandboxed Lua 5.1 state (lupa's bundled Lua 5.1, the version Redis embeds).

Owns: the Lua state and its prelude (``prelude.PRELUDE``), compiling bodies, running a
script or a function and turning its outcome into an encoded reply or Redis's error text
("<msg> script: <sha>, on @user_script:<line>."), and the Python halves of the ``redis``,
``bit``, ``cjson``, ``cmsgpack`` and ``struct`` APIs. Never runs a command itself: a
``Bridge`` (the engine's script runner) does, and answers the busy hook's ``tick``.
A state serves one script at a time; the engine owns two (EVAL's and FUNCTION's).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Protocol

import lupa.lua51 as lua51

from . import convert, libs
from .convert import ARRAY_ARGS_MAX
from .prelude import HOOK_INSTRUCTIONS, PRELUDE

# Most memory one Lua state may hold (bytes): a script past it fails with "not enough
# memory" instead of taking the server's memory (Redis has no such cap; ackdb puts a
# limit on everything).
LUA_MEMORY_MAX_BYTES = 1 << 30

# What redis.REDIS_VERSION reports (Redis 7.2's semantics are what ackdb follows).
REDIS_VERSION = b"7.2.0"
REDIS_VERSION_NUM = 0x070200


class Bridge(Protocol):
    """The engine's side of a running script."""

    def call(self, raise_errors: bool, args: tuple[Any, ...]) -> Any:
        """Run ``redis.call`` (``raise_errors``) / ``redis.pcall``: the Lua value of the
        reply; an error reply is raised as ``CallError`` by ``redis.call``, returned as an
        ``{err=...}`` table by ``redis.pcall``. ``args`` may be empty."""

    def log(self, level: int, msg: bytes) -> None: ...

    def setresp(self, version: int) -> None: ...

    def set_repl(self, flags: Any) -> bytes | None: ...

    def tick(self) -> bytes | None:
        """Called every ``HOOK_INSTRUCTIONS``: the kill error's text, or None to go on."""

    def acl_check_cmd(self, args: tuple[Any, ...]) -> tuple[int, Any]: ...

    def register_function(self, args: tuple[Any, ...]) -> None:
        """``redis.register_function`` while a library loads (raises ValueError)."""


class ScriptError(Exception):
    """A script or function ended with an error; ``reply`` is the encoded error."""

    def __init__(self, reply: bytes) -> None:
        super().__init__(reply)
        self.reply = reply


class LuaVM:
    """A Lua state prepared as Redis prepares its scripting engine."""

    def __init__(self, mode: str) -> None:
        assert mode in ("eval", "functions")
        self.mode = mode
        self.chunk = "user_function" if mode == "functions" else "user_script"
        self.bridge: Bridge | None = None
        rt = lua51.LuaRuntime(
            encoding=None,
            unpack_returned_tuples=True,
            register_eval=False,
            register_builtins=False,
            max_memory=LUA_MEMORY_MAX_BYTES,
        )
        self.rt = rt
        self._table_from = rt.table_from
        null = rt.eval("newproxy(false)")
        self.cjson = libs.CJson(rt.table_from, null)
        self.msgpack = libs.CMsgpack(rt.table_from)
        self.struct = libs.Struct()
        py = rt.table_from(
            {
                b"call_raise": self._call_raise,
                b"call_noraise": self._call_noraise,
                b"log": lambda level, msg: self._bridge().log(int(level), msg),
                b"setresp": self._setresp,
                b"set_repl": self._set_repl,
                b"tick": self._tick,
                b"acl_check_cmd": self._acl_check_cmd,
                b"register_function": lambda *a: self._bridge().register_function(a),
                b"sha1hex": lambda s: hashlib.sha1(s).hexdigest().encode(),
                b"error_text": convert.error_text,
                b"error_plain": _error_plain,
                b"error_kind": _error_kind,
                b"bit": rt.table_from(libs.bit_functions()),
                b"struct": rt.table_from(
                    {
                        b"pack": self.struct.pack,
                        b"unpack": self.struct.unpack,
                        b"size": self.struct.size,
                    }
                ),
                b"cjson_encode": self.cjson.encode,
                b"cjson_decode": self.cjson.decode,
                b"null": null,
                b"msgpack_pack": self.msgpack.pack,
                b"msgpack_unpack": self.msgpack.unpack,
                b"version": REDIS_VERSION,
                b"version_num": REDIS_VERSION_NUM,
            }
        )
        api = rt.execute(PRELUDE, py, mode.encode(), HOOK_INSTRUCTIONS)
        self._compile = api[b"compile"]
        self._run_script = api[b"run_script"]
        self._run_function = api[b"run_function"]
        self._run_script_tables = api[b"run_script_tables"]
        self._run_function_tables = api[b"run_function_tables"]
        self.to_lua = convert.ReplyToLua(
            rt.table_from, api[b"ok"], api[b"err"], api[b"array"], api[b"oks"]
        )
        self._load_library = api[b"load_library"]
        self._unhook = api[b"unhook"]
        self.is_function = api[b"is_function"]
        self._set_calls = api[b"set_calls"]
        # Whose redis.call / redis.pcall the state calls (``bind_calls``); None: the
        # bridge's ``call``, through ``_call_raise`` / ``_call_noraise``.
        self.calls_owner: object | None = None
        # lupa's own global (a way back into Python) is never left reachable.
        g = rt.globals()
        for name in (
            b"python",
            b"os",
            b"io",
            b"package",
            b"require",
            b"module",
            b"dofile",
            b"loadfile",
            b"debug",
            b"newproxy",
        ):
            g[name] = None

    def _bridge(self) -> Bridge:
        b = self.bridge
        assert b is not None, "a script runs only with a bridge"
        return b

    def _setresp(self, v: Any = None) -> None:
        if v not in (2, 3):
            raise CallError(b"ERR RESP version must be 2 or 3.")
        self._bridge().setresp(int(v))

    def _set_repl(self, flags: Any = None) -> None:
        err = self._bridge().set_repl(flags)
        if err is not None:
            raise CallError(err)

    def _acl_check_cmd(self, *args: Any) -> Any:
        kind, v = self._bridge().acl_check_cmd(args)
        if kind == 2:
            raise CallError(v)
        return v

    def _tick(self) -> bytes | None:
        b = self.bridge
        if b is None:
            self._unhook()  # a killed script's every-instruction hook, left behind
            return None
        return b.tick()

    # redis.call / redis.pcall: one frame between Lua and the bridge (the hot path of a
    # script; the bridge checks the arguments). A script runs only with a bridge.
    def _call_raise(self, *args: Any) -> Any:
        return self.bridge.call(True, args)  # type: ignore[union-attr]

    def _call_noraise(self, *args: Any) -> Any:
        return self.bridge.call(False, args)  # type: ignore[union-attr]

    def bind_calls(
        self, owner: object, call: Callable[..., Any], pcall: Callable[..., Any]
    ) -> None:
        """Make ``call`` and ``pcall`` the state's redis.call and redis.pcall (the
        engine's bridge, the same for every run: no frame between Lua and it). They take
        redis.call's arguments as sent; ``call`` raises CallError, ``pcall`` returns the
        ``{err=...}`` table."""
        self._set_calls(call, pcall)
        self.calls_owner = owner

    # -- compiling and running -------------------------------------------------------

    def compile(self, code: bytes) -> Any:
        """The compiled body, or ValueError with Lua's message."""
        f, err = self._compile(code, self.chunk.encode())
        if f is None:
            raise ValueError(err.decode("utf-8", "replace") if isinstance(err, bytes) else err)
        return f

    def table(self, items: list[bytes]) -> Any:
        return self._table_from(items)

    def run_script(self, f: Any, keys: list[bytes], argv: list[bytes], sha: str) -> Any:
        """Run an EVAL body; the Lua result, or ScriptError."""
        return self.run(f, False, len(keys), keys + argv, sha)

    def run_function(self, f: Any, keys: list[bytes], args: list[bytes], name: str) -> Any:
        return self.run(f, True, len(keys), keys + args, name)

    def run(self, f: Any, is_function: bool, nkeys: int, args: list[bytes], name: str) -> Any:
        """Run an EVAL body (a function's callback if ``is_function``) with ``args``: the
        ``nkeys`` keys, then the arguments; the Lua result, or ScriptError."""
        try:
            if len(args) <= ARRAY_ARGS_MAX:
                if is_function:
                    res = self._run_function(f, nkeys, *args)
                else:
                    res = self._run_script(f, nkeys, *args)
            else:
                keys = self._table_from(args[:nkeys])
                rest = self._table_from(args[nkeys:])
                if is_function:
                    res = self._run_function_tables(f, keys, rest)
                else:
                    res = self._run_script_tables(f, keys, rest)
        except lua51.LuaError as e:  # out of memory outside the script's own frames
            self.rt.gccollect()
            raise ScriptError(
                b"-ERR %s script: %s\r\n" % (str(e).encode(), name.encode())
            ) from None
        if type(res) is tuple and res[0] is True and len(res) == 2:
            return res[1]  # the common outcome: a value
        return self._outcome(res, name)

    def load_library(self, f: Any) -> bytes | None:
        """Run a library body with the loading API; None, or the error message."""
        res = self._load_library(f)
        if not isinstance(res, tuple) or res[0]:
            return None
        info = res[1]
        msg, line, kind = info[1], info[2], info[3]
        return _message(msg, kind, line, self.chunk)

    def _outcome(self, res: Any, name: str) -> Any:
        if not isinstance(res, tuple):
            return res if res is not True else None  # xpcall gave no result
        if res[0] is True:
            return res[1] if len(res) > 1 else None
        info = res[1]
        if not hasattr(info, "values"):  # no handler ran: Lua's "not enough memory"
            self.rt.gccollect()
            text = info if isinstance(info, bytes) else str(info).encode()
            raise ScriptError(
                b"-ERR " + convert._clean(text) + b" script: " + name.encode() + b"\r\n"
            )
        line = info[2]
        text = _message(info[1], info[3], line, self.chunk)
        where = f"script: {name}, on @{self.chunk}:{line}."
        raise ScriptError(b"-" + convert._clean(text) + b" " + where.encode() + b"\r\n")


def _message(msg: Any, kind: Any, line: Any, chunk: str) -> bytes:
    """An error's text: kind 1 has its own code; kind 0 is a Lua error (``ERR`` added);
    kind 2 a Python library's exception (positioned like a Lua error)."""
    text = msg if isinstance(msg, bytes) else str(msg).encode()
    if kind == 1:
        return text
    if kind == 2:
        return b"ERR %s:%d: %s" % (chunk.encode(), int(line), text)
    return b"ERR " + text


class CallError(Exception):
    """redis.call's error: its text is the error reply's (code first), raised into Lua."""

    def __init__(self, text: bytes) -> None:
        super().__init__(text)
        self.text = text


def _error_plain(e: Any) -> bytes:
    """The message of a Python exception raised inside redis.call or a library."""
    if isinstance(e, CallError):
        return e.text
    if isinstance(e, BaseException):
        arg = e.args[0] if e.args else e
        return arg if isinstance(arg, bytes) else str(arg).encode()
    return str(e).encode()


def _error_kind(e: Any) -> int:
    """1: redis.call's error (has its code); 2: a library's (positioned, ERR added)."""
    return 1 if isinstance(e, CallError) else 2
