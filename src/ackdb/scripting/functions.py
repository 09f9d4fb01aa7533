"""Function libraries (FUNCTION LOAD, FCALL): the registry of libraries and their functions.

Owns: loading a library's code into the functions' Lua state (its header, its body run
with the loading API, ``redis.register_function``'s checks), replacing and deleting
libraries, and the DUMP payload (ackdb's own: a versioned msgpack list of the libraries'
codes with a CRC, restorable only by ackdb, as a Redis payload only by Redis). Libraries
are part of the dataset: the engine saves their codes with snapshots and the AOF.
Never runs a function (the engine does, through ``vm``) and never touches files.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from . import shebang
from .vm import CallError, LuaVM

DUMP_MAGIC = b"ackdb-functions"
DUMP_VERSION = 1


@dataclass(slots=True)
class Function:
    name: str
    callback: Any  # the Lua function
    flags: frozenset[str]
    description: bytes | None
    library: str


@dataclass(slots=True)
class Library:
    name: str
    code: bytes
    functions: dict[str, Function] = field(default_factory=dict)


class FunctionError(ValueError):
    """A refused FUNCTION command; the message is the error reply's text."""


# Longest a library body may run while it loads (ns), as Redis's 500 ms load timeout.
LOAD_TIMEOUT_NS = 500_000_000


class _Loading:
    """The bridge while a library body runs: collects ``register_function`` calls."""

    def __init__(self, library: str, perf_ns: Callable[[], int] | None) -> None:
        self.library = library
        self.functions: dict[str, Function] = {}
        self.perf_ns = perf_ns
        self.deadline_ns = perf_ns() + LOAD_TIMEOUT_NS if perf_ns is not None else 0

    def register_function(self, args: tuple[Any, ...]) -> None:
        if len(args) == 1:
            name, callback, flags, desc = _named_args(args[0])
        elif len(args) == 2:
            name, callback, flags, desc = args[0], args[1], frozenset(), None
        else:
            raise ValueError("wrong number of arguments to redis.register_function")
        if not isinstance(name, bytes):
            raise ValueError("first argument to redis.register_function must be a string")
        text = name.decode("utf-8", "replace")
        if not shebang.valid_function_name(text):
            raise ValueError(
                "Function names can only contain letters, numbers, or underscores(_) and "
                "must be at least one character long"
            )
        if type(callback).__name__ != "_LuaFunction":
            raise ValueError(
                "callback argument given to redis.register_function must be a function"
            )
        if text in self.functions:
            raise ValueError("Function already exists in the library")
        self.functions[text] = Function(text, callback, flags, desc, self.library)

    def log(self, level: int, msg: bytes) -> None:
        pass

    def setresp(self, version: int) -> None:
        pass

    def tick(self) -> bytes | None:
        if self.perf_ns is not None and self.perf_ns() > self.deadline_ns:
            return b"ERR FUNCTION LOAD timeout"
        return None

    def call(self, raise_errors: bool, args: tuple[Any, ...]) -> Any:
        raise CallError(b"ERR redis.call is not allowed while a library loads")

    def set_repl(self, flags: Any) -> bytes | None:
        return b"ERR redis.set_repl is not allowed while a library loads"

    def acl_check_cmd(self, args: tuple[Any, ...]) -> tuple[int, Any]:
        return 2, b"ERR redis.acl_check_cmd is not allowed while a library loads"


def _named_args(t: Any) -> tuple[Any, Any, frozenset[str], bytes | None]:
    if type(t).__name__ != "_LuaTable":
        raise ValueError(
            "calling redis.register_function with a single argument is only applicable to "
            "Lua table (representing named arguments)."
        )
    name = callback = desc = None
    flags: frozenset[str] = frozenset()
    for k, v in t.items():
        if k == b"function_name":
            name = v
        elif k == b"callback":
            callback = v
        elif k == b"description":
            if not isinstance(v, bytes):
                raise ValueError(
                    "description argument given to redis.register_function must be a string"
                )
            desc = v
        elif k == b"flags":
            if type(v).__name__ != "_LuaTable":
                raise ValueError(
                    "flags argument to redis.register_function must be a table representing function flags"
                )
            words = [
                x.decode("utf-8", "replace") if isinstance(x, bytes) else "?" for x in v.values()
            ]
            try:
                flags = shebang.parse_flag_list(words, "unknown flag given")
            except shebang.HeaderError:
                raise ValueError("unknown flag given") from None
        else:
            raise ValueError("unknown argument given to redis.register_function")
    if name is None:
        raise ValueError("redis.register_function must get a function name argument")
    if callback is None:
        raise ValueError("redis.register_function must get a callback argument")
    return name, callback, flags, desc


class Registry:
    """Every loaded library and function of one engine."""

    def __init__(self) -> None:
        self.vm: LuaVM | None = None  # made on the first load
        self.libraries: dict[str, Library] = {}
        self.functions: dict[str, Function] = {}

    def _vm(self) -> LuaVM:
        if self.vm is None:
            self.vm = LuaVM("functions")
        return self.vm

    def load(self, code: bytes, replace: bool, perf_ns: Callable[[], int] | None = None) -> str:
        """Load (or with ``replace`` replace) a library; returns its name. With the
        engine's clock (``perf_ns``) a body running past ``LOAD_TIMEOUT_NS`` fails."""
        try:
            header = shebang.library_header(code)
        except shebang.HeaderError as e:
            raise FunctionError(str(e)) from None
        old = self.libraries.get(header.name)
        if old is not None and not replace:
            raise FunctionError(f"ERR Library '{header.name}' already exists")
        vm = self._vm()
        try:
            body = vm.compile(header.body)
        except ValueError as e:
            raise FunctionError(f"ERR Error compiling function: {e}") from None
        loading = _Loading(header.name, perf_ns)
        saved = vm.bridge
        vm.bridge = loading
        try:
            err = vm.load_library(body)
        finally:
            vm.bridge = saved
        if err is not None:
            raise FunctionError(
                "ERR Error registering functions: " + err.decode("utf-8", "replace")
            )
        if not loading.functions:
            raise FunctionError("ERR No functions registered")
        for name in loading.functions:
            other = self.functions.get(name)
            if other is not None and other.library != header.name:
                raise FunctionError(f"ERR Function {name} already exists")
        if old is not None:
            self._remove(old)
        lib = Library(header.name, code, loading.functions)
        self.libraries[lib.name] = lib
        self.functions.update(lib.functions)
        return lib.name

    def _remove(self, lib: Library) -> None:
        del self.libraries[lib.name]
        for name in lib.functions:
            self.functions.pop(name, None)

    def delete(self, name: str) -> None:
        lib = self.libraries.get(name)
        if lib is None:
            raise FunctionError("ERR Library not found")
        self._remove(lib)

    def flush(self) -> None:
        self.libraries = {}
        self.functions = {}
        self.vm = None  # a fresh state: nothing of the old libraries survives

    def codes(self) -> list[bytes]:
        return [lib.code for lib in self.libraries.values()]

    # -- DUMP / RESTORE ----------------------------------------------------------------

    def dump(self) -> bytes:
        body: bytes = msgpack.packb([DUMP_MAGIC, DUMP_VERSION, self.codes()], use_bin_type=True)
        return body + zlib.crc32(body).to_bytes(4, "little")

    def restore(self, payload: bytes, policy: str) -> None:
        codes = _undump(payload)
        if policy == "flush":
            saved = (self.libraries, self.functions, self.vm)
            self.flush()
            try:
                for code in codes:
                    self.load(code, False)
            except FunctionError:
                self.libraries, self.functions, self.vm = saved
                raise
            return
        names = [shebang.library_header(c).name for c in codes]
        if policy == "append":
            for n in names:
                if n in self.libraries:
                    raise FunctionError(f"ERR Library {n} already exists")
        saved_libs = dict(self.libraries)
        saved_funcs = dict(self.functions)
        try:
            for code in codes:
                self.load(code, True)
        except FunctionError:
            self.libraries, self.functions = saved_libs, saved_funcs
            raise


def _undump(payload: bytes) -> list[bytes]:
    if len(payload) < 5 or zlib.crc32(payload[:-4]).to_bytes(4, "little") != payload[-4:]:
        raise FunctionError("ERR payload version or checksum are wrong")
    try:
        magic, version, codes = msgpack.unpackb(payload[:-4], raw=False)
    except Exception:
        raise FunctionError("ERR payload version or checksum are wrong") from None
    if magic != DUMP_MAGIC or version != DUMP_VERSION or not isinstance(codes, list):
        raise FunctionError("ERR payload version or checksum are wrong")
    if not all(isinstance(c, bytes) for c in codes):
        raise FunctionError("ERR payload version or checksum are wrong")
    return codes
