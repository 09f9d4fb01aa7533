"""The scripting package alone: shebang headers, Lua <-> RESP conversions, the bit /
struct / cjson / cmsgpack libraries, the sandbox and the error texts of ``vm``, and the
function registry. Expected values are redis-server 7.0.15's, probed while writing these
(Redis docs "Lua API reference" and "Data type conversion")."""

from __future__ import annotations

from typing import Any

import pytest

from ackdb.scripting import convert, shebang
from ackdb.scripting.functions import FunctionError, Registry
from ackdb.scripting.libs import Struct, bit_functions
from ackdb.scripting.vm import CallError, LuaVM, ScriptError


class Bridge:
    """A bridge answering redis.call with fixed replies."""

    def __init__(self, vm: LuaVM, replies: dict[bytes, bytes] | None = None) -> None:
        self.vm = vm
        self.replies = replies or {}
        self.calls: list[tuple[Any, ...]] = []
        self.ticks = 0
        self.kill_after: int | None = None

    def call(self, raise_errors: bool, args: tuple[Any, ...]) -> Any:
        if not args:
            raise CallError(b"ERR Please specify at least one argument for this redis lib call")
        self.calls.append(args)
        reply = self.replies.get(args[0], b"+OK\r\n")
        if reply[:1] == b"-":
            if raise_errors:
                raise CallError(reply[1:-2])
            return self.vm.to_lua.table({b"err": reply[1:-2]})
        return self.vm.to_lua.convert(reply)

    def tick(self) -> bytes | None:
        self.ticks += 1
        if self.kill_after is not None and self.ticks > self.kill_after:
            return b"ERR Script killed by user with SCRIPT KILL..."
        return None

    def log(self, level: int, msg: bytes) -> None:
        pass

    def setresp(self, version: int) -> None:
        pass

    def set_repl(self, flags: Any) -> bytes | None:
        return None

    def acl_check_cmd(self, args: tuple[Any, ...]) -> tuple[int, Any]:
        return 0, True

    def register_function(self, args: tuple[Any, ...]) -> None:
        raise ValueError("not while running")


def run(code: bytes, resp3: bool = False, replies: dict[bytes, bytes] | None = None) -> bytes:
    vm = LuaVM("eval")
    vm.bridge = Bridge(vm, replies)
    try:
        return convert.to_resp(vm.run_script(vm.compile(code), [b"k"], [b"a"], "sha"), resp3)
    except ScriptError as e:
        return e.reply


# -- shebang -------------------------------------------------------------------------------


def test_script_shebang() -> None:
    h = shebang.script_header(b"#!lua flags=no-writes,allow-oom\nreturn 1")
    assert h.has_shebang and h.flags == {"no-writes", "allow-oom"}
    assert h.body.startswith(b"--#!lua")  # line numbers stay
    assert not shebang.script_header(b"return 1").has_shebang
    for code, msg in [
        (b"#!lua flags=bad\n", "ERR Unexpected flag in script shebang: bad"),
        (b"#!luax\n", "ERR Unexpected engine in script shebang: #!luax"),
        (b"#!lua name=x\n", "ERR Unknown lua shebang option: name=x"),
    ]:
        with pytest.raises(shebang.HeaderError, match=msg):
            shebang.script_header(code)


def test_library_header() -> None:
    assert shebang.library_header(b"#!lua name=lib_1\n").name == "lib_1"
    for code, msg in [
        (b"nothing", "Missing library metadata"),
        (b"#!lua\n", "Library name was not given"),
        (b"#!py name=x\n", "Engine 'py' not found"),
        (b"#!lua name=a-b\n", "Library names can only contain"),
    ]:
        with pytest.raises(shebang.HeaderError, match=msg):
            shebang.library_header(code)


# -- conversions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "resp2"),
    [
        (b"return 1", b":1\r\n"),
        (b"return 3.99", b":3\r\n"),
        (b"return -3.99", b":-3\r\n"),
        (b"return 1e20", b":-9223372036854775808\r\n"),
        (b"return 0/0", b":-9223372036854775808\r\n"),
        (b"return 'x'", b"$1\r\nx\r\n"),
        (b"return true", b":1\r\n"),
        (b"return false", b"$-1\r\n"),
        (b"return nil", b"$-1\r\n"),
        (b"return {1,2,nil,4}", b"*2\r\n:1\r\n:2\r\n"),
        (b"return {ok='fine'}", b"+fine\r\n"),
        (b"return {err='E x\\r\\ny'}", b"-E x  y\r\n"),
        (b"return {err=1}", b"*0\r\n"),
        (b"return {double=1.5}", b"$3\r\n1.5\r\n"),
        (b"return {map={a=1}}", b"*2\r\n$1\r\na\r\n:1\r\n"),
        (b"return redis.error_reply('x')", b"-ERR x\r\n"),
        (b"return redis.error_reply('-X y')", b"-X y\r\n"),
    ],
)
def test_lua_to_resp2(code: bytes, resp2: bytes) -> None:
    assert run(code) == resp2


def test_lua_to_resp3() -> None:
    assert run(b"return nil", resp3=True) == b"_\r\n"
    assert run(b"return {double=1.5}", resp3=True) == b",1.5\r\n"
    assert run(b"return {map={a=1}}", resp3=True) == b"%1\r\n$1\r\na\r\n:1\r\n"
    assert run(b"return {set={a=true}}", resp3=True) == b"~1\r\n$1\r\na\r\n"
    assert run(b"return {big_number='12'}", resp3=True) == b"(12\r\n"
    # Booleans follow the script's protocol (RESP2 unless redis.setresp(3)).
    assert run(b"return true", resp3=True) == b":1\r\n"
    assert convert.to_resp(True, True, 0, True) == b"#t\r\n"
    assert convert.to_resp(False, False, 0, True) == b":0\r\n"


def test_reply_to_lua_both_protocols() -> None:
    replies = {
        b"a": b"*3\r\n$1\r\nx\r\n:5\r\n$-1\r\n",
        b"m": b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n",
        b"s": b"~1\r\n$1\r\nm\r\n",
        b"d": b",2.5\r\n",
        b"b": b"#t\r\n",
        b"n": b"_\r\n",
        b"v": b"=8\r\ntxt:abcd\r\n",
    }
    assert run(b"local r = redis.call('a') return {r[1], r[2], type(r[3])}", replies=replies) == (
        b"*3\r\n$1\r\nx\r\n:5\r\n$7\r\nboolean\r\n"
    )
    assert run(b"return redis.call('m').map.f", replies=replies) == b"$1\r\nv\r\n"
    assert run(b"return tostring(redis.call('s').set.m)", replies=replies) == b"$4\r\ntrue\r\n"
    assert run(b"return redis.call('d').double * 2", replies=replies) == b":5\r\n"
    assert run(b"return type(redis.call('b'))", replies=replies) == b"$7\r\nboolean\r\n"
    assert run(b"return type(redis.call('n'))", replies=replies) == b"$3\r\nnil\r\n"
    assert (
        run(b"return redis.call('v').verbatim_string.string", replies=replies) == b"$4\r\nabcd\r\n"
    )


def test_call_arguments() -> None:
    assert convert.arg_bytes(5) == b"5"
    assert convert.arg_bytes(0.1 + 0.2) == b"0.30000000000000004"
    assert convert.arg_bytes(None) is None
    assert convert.error_text(b"x") == b"ERR x"


# -- errors and the sandbox ----------------------------------------------------------------


def test_error_texts_carry_the_line() -> None:
    assert (
        run(b"\n\nerror('boom')") == b"-ERR user_script:3: boom script: sha, on @user_script:3.\r\n"
    )
    assert run(b"error({err='MY x'})") == b"-MY x script: sha, on @user_script:1.\r\n"
    replies = {b"bad": b"-WRONGTYPE nope\r\n"}
    assert run(b"\nreturn redis.call('bad')", replies=replies) == (
        b"-WRONGTYPE nope script: sha, on @user_script:2.\r\n"
    )
    assert run(b"return redis.pcall('bad')", replies=replies) == b"-WRONGTYPE nope\r\n"
    assert run(b"local ok, e = pcall(redis.call, 'bad') return e", replies=replies) == (
        b"$14\r\nWRONGTYPE nope\r\n"
    )
    with pytest.raises(ValueError, match="expected"):
        LuaVM("eval").compile(b"retur 1")


@pytest.mark.parametrize(
    "code", [b"return os", b"return io", b"return require", b"return debug", b"return python",
             b"return dofile", b"return loadfile", b"return package", b"return newproxy"]
)  # fmt: skip
def test_sandbox_hides(code: bytes) -> None:
    assert b"Script attempted to access nonexistent global variable" in run(code)


@pytest.mark.parametrize(
    "code", [b"x = 1", b"string.x = 1", b"redis.call = nil", b"_G.y = 2", b"cjson.encode = 1"]
)
def test_globals_are_read_only(code: bytes) -> None:
    assert b"Attempt to modify a readonly table" in run(code)


def test_bytecode_is_refused() -> None:
    assert b"binary chunks refused" in run(
        b"return select(2, loadstring(string.dump(function() end)))"
    )
    with pytest.raises(ValueError, match="binary"):
        LuaVM("eval").compile(b"\x1bLua")


def test_pairs_sees_library_tables() -> None:
    assert run(b"local n = 0 for k in pairs(string) do n = n + 1 end return n > 10") == b":1\r\n"


def test_kill_from_the_hook_passes_pcall() -> None:
    vm = LuaVM("eval")
    b = Bridge(vm)
    b.kill_after = 2
    vm.bridge = b
    with pytest.raises(ScriptError, match="Script killed"):
        vm.run_script(vm.compile(b"while true do pcall(function() end) end"), [], [], "sha")
    b.kill_after = None
    assert vm.run_script(vm.compile(b"return 7"), [], [], "sha") == 7


# -- libraries ------------------------------------------------------------------------------


def test_bit() -> None:
    f = bit_functions()
    assert f[b"tobit"](0xFFFFFFFF) == -1
    assert f[b"lshift"](1, 31) == -(1 << 31)
    assert f[b"tohex"](-1, -4) == b"FFFF"
    assert f[b"rol"](1, 33) == 2
    assert f[b"arshift"](-16, 2) == -4
    assert f[b"rshift"](-16, 2) == 1073741820
    assert f[b"bswap"](0x12345678) == 2018915346
    assert f[b"band"](0xFF, 0x0F, 0x3) == 3


def test_struct() -> None:
    s = Struct()
    assert s.pack(b">I2", 258) == b"\x01\x02"
    assert s.unpack(b">I2c2", b"ABxy") == (16706, b"xy", 5)
    assert s.size(b">iI4b") == 9
    packed = s.pack(b"<hzs1d", -2, b"ab", b"xyz", 1.5)
    assert s.unpack(b"<hzs1d", packed)[:4] == (-2, b"ab", b"xyz", 1.5)


def test_cjson_and_cmsgpack() -> None:
    assert run(b"return cjson.encode({1,2,{a=1}})") == b'$13\r\n[1,2,{"a":1}]\r\n'
    assert run(b"return cjson.encode({[1]=1,[3]=3})") == b"$10\r\n[1,null,3]\r\n"
    assert run(b"return cjson.encode('a/b')") == b'$6\r\n"a\\/b"\r\n'
    assert run(b"return cjson.decode('[1,null]')[2] == cjson.null") == b":1\r\n"
    assert run(b"return cmsgpack.pack({1,2,3})") == b"$4\r\n\x93\x01\x02\x03\r\n"
    assert (
        run(b"return cmsgpack.pack(1.5, 0.1)")
        == b"$14\r\n\xca?\xc0\x00\x00\xcb?\xb9\x99\x99\x99\x99\x99\x9a\r\n"
    )
    assert run(b"return {cmsgpack.unpack(cmsgpack.pack({a={1,2}}, 'x'))}") == (
        b"*2\r\n*0\r\n$1\r\nx\r\n"
    )


# -- function registry ----------------------------------------------------------------------


LIB = b"#!lua name=lib\nredis.register_function('f', function(k, a) return a[1] end)"


def test_registry_load_replace_delete() -> None:
    reg = Registry()
    assert reg.load(LIB, False) == "lib"
    with pytest.raises(FunctionError, match="Library 'lib' already exists"):
        reg.load(LIB, False)
    reg.load(LIB.replace(b"'f'", b"'g'"), True)
    assert set(reg.functions) == {"g"}
    with pytest.raises(FunctionError, match="Function g already exists"):
        reg.load(b"#!lua name=other\nredis.register_function('g', function() end)", False)
    with pytest.raises(FunctionError, match="No functions registered"):
        reg.load(b"#!lua name=empty\nreturn 1", False)
    with pytest.raises(FunctionError, match="nonexistent global variable 'call'"):
        reg.load(b"#!lua name=bad\nredis.call('get', 'x')", False)
    with pytest.raises(FunctionError, match="unknown flag given"):
        reg.load(
            b"#!lua name=bad\nredis.register_function{function_name='h', callback=function() end, flags={'x'}}",
            False,
        )
    payload = reg.dump()
    reg.delete("lib")
    assert not reg.libraries
    reg.restore(payload, "append")
    assert set(reg.functions) == {"g"}
    with pytest.raises(FunctionError, match="already exists"):
        reg.restore(payload, "append")
    reg.restore(payload, "replace")
    with pytest.raises(FunctionError, match="payload"):
        reg.restore(payload[:-1] + b"x", "flush")
    assert reg.codes() == [LIB.replace(b"'f'", b"'g'")]


def test_memory_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    import ackdb.scripting.vm as vm_module

    monkeypatch.setattr(vm_module, "LUA_MEMORY_MAX_BYTES", 8 << 20)
    vm = LuaVM("eval")
    vm.bridge = Bridge(vm)
    hog = vm.compile(b"local t = {} for i = 1, 1e7 do t[i] = string.rep('x', 64) .. i end")
    with pytest.raises(ScriptError, match="not enough memory"):
        vm.run_script(hog, [], [], "sha")
    assert vm.run_script(vm.compile(b"return 5"), [], [], "sha") == 5  # still usable


def test_library_load_times_out() -> None:
    clock = iter(range(0, 10**12, 10**8))  # 100 ms a reading
    reg = Registry()
    with pytest.raises(FunctionError, match="FUNCTION LOAD timeout"):
        reg.load(b"#!lua name=spin\nwhile true do end", False, lambda: next(clock))
    assert not reg.libraries
