"""The Lua side of the sandbox: run once in each fresh Lua state by ``vm``.

Owns: Redis's script environment — the globals a script may read (the base functions
Redis keeps, ``string``, ``table``, ``math``, ``redis``, ``cjson``, ``cmsgpack``, ``bit``,
``struct``, ``KEYS``, ``ARGV``), global protection ("Script attempted to access
nonexistent global variable", "Attempt to modify a readonly table": every library table a
script sees is a read-only proxy), the ``redis.*`` API calling into Python, the error
handler that finds a failing line, and the instruction-count hook that lets the engine
answer other clients (``-BUSY``) and stop a killed script. Lua 5.1 cannot yield from a
hook, so the hook calls the engine's ``tick`` and raises the kill error itself.

Never exposes ``os``, ``io``, ``package``, ``require``, ``module``, ``dofile``,
``loadfile``, ``debug``, ``newproxy`` or lupa's ``python`` to a script.
"""

# Instructions between two calls of the busy hook: about 1 ms of a tight Lua loop.
HOOK_INSTRUCTIONS = 100_000

PRELUDE = r"""
local py, mode, hook_count = ...
local G = _G
local debug_getinfo, debug_sethook = debug.getinfo, debug.sethook
local error, type, tostring, select, rawget, rawset = error, type, tostring, select, rawget, rawset
local setmetatable, xpcall, next = setmetatable, xpcall, next

local function readonly() error("Attempt to modify a readonly table", 2) end
local proxied = setmetatable({}, {__mode = "k"})
local function protect(t)
  local p = setmetatable({}, {__index = t, __newindex = readonly, __metatable = false})
  proxied[p] = t
  return p
end

-- pairs / next see through the read-only proxies (Lua 5.1 has no __pairs).
local function next_(t, k) return next(proxied[t] or t, k) end
local function pairs_(t) return next, proxied[t] or t, nil end

local real = {}
for _, name in ipairs({"assert", "collectgarbage", "error", "gcinfo", "getmetatable",
    "ipairs", "load", "loadstring", "pcall", "rawequal", "rawget", "rawset", "select",
    "setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall", "_VERSION"}) do
  real[name] = G[name]
end
real.pairs = pairs_
real.next = next_
real.string = protect(string)
real.table = protect(table)
real.math = protect(math)
real.coroutine = protect(coroutine)

-- bit, struct, cjson, cmsgpack (Python)
real.bit = protect(py.bit)
real.struct = protect(py.struct)
local cjson = {encode = py.cjson_encode, decode = py.cjson_decode, null = py.null}
for _, n in ipairs({"decode_invalid_numbers", "decode_max_depth", "encode_invalid_numbers",
    "encode_keep_buffer", "encode_max_depth", "encode_number_precision",
    "encode_sparse_array"}) do cjson[n] = function() return nil end end
cjson.new = function() return real.cjson end
real.cjson = protect(cjson)
real.cmsgpack = protect({pack = py.msgpack_pack, unpack = py.msgpack_unpack,
  unpack_one = function(s, o) return py.msgpack_unpack(s) end,
  unpack_limit = function(s, l, o) return py.msgpack_unpack(s) end,
  _NAME = "cmsgpack", _VERSION = "lua-cmsgpack 0.4.0",
  _COPYRIGHT = "Copyright (C) 2012, Salvatore Sanfilippo",
  _DESCRIPTION = "MessagePack C implementation for Lua"})

-- redis.*: call and pcall are the Python functions themselves, so a script's
-- ``return redis.call(...)`` (a tail call) keeps the script's frame for the error line;
-- redis.call raises a Python ``CallError``, which pcall turns into its message.
local redis = {}
redis.call = py.call_raise
redis.pcall = py.call_noraise
local raw_pcall = pcall
local function plain(ok, ...)
  if ok then return ok, ... end
  local e = ...
  if type(e) == "userdata" then return false, py.error_plain(e) end
  return false, ...
end
real.pcall = function(f, ...) return plain(raw_pcall(f, ...)) end
redis.error_reply = function(msg)
  if type(msg) ~= "string" then error("wrong number or type of arguments", 2) end
  msg = py.error_text(msg)
  return {err = msg}
end
redis.status_reply = function(msg)
  if type(msg) ~= "string" then error("wrong number or type of arguments", 2) end
  return {ok = msg}
end
redis.sha1hex = function(s)
  if type(s) ~= "string" and type(s) ~= "number" then
    error("wrong number of arguments", 2)
  end
  return py.sha1hex(tostring(s))
end
redis.log = function(level, ...)
  local n = select("#", ...)
  if n == 0 then error("redis.log() requires two arguments or more.", 2) end
  if type(level) ~= "number" then error("First argument must be a number (log level).", 2) end
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  py.log(level, table.concat(parts, " "))
end
-- Python functions (C frames: an error keeps the script's line, see redis.call).
redis.setresp = py.setresp
redis.set_repl = py.set_repl
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() return nil end
redis.acl_check_cmd = py.acl_check_cmd
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_REPLICA, redis.REPL_SLAVE, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.REDIS_VERSION = py.version
redis.REDIS_VERSION_NUM = py.version_num

local missing = function(t, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end
local redis_run = protect(redis)

-- FUNCTION LOAD's view of redis: register_function, logging and constants, no calls.
local loading = {register_function = py.register_function, log = redis.log,
  setresp = redis.setresp, LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = py.version, REDIS_VERSION_NUM = py.version_num}
local redis_load = setmetatable({}, {__index = setmetatable(loading, {__index = missing}),
  __newindex = readonly, __metatable = false})

real.redis = redis_run
setmetatable(real, {__index = missing, __metatable = false})
local env = setmetatable({}, {__index = real, __newindex = readonly, __metatable = false})
real._G = env

-- Bytecode is refused (a crafted binary chunk can break the VM): string.dump stays, as in
-- Redis, but nothing it makes can be loaded.
real.loadstring = function(s, name)
  if type(s) == "string" and s:sub(1, 1) == "\27" then return nil, "binary chunks refused" end
  local f, e = loadstring(s, name)
  if f then setfenv(f, env) end
  return f, e
end
real.load = function(fn, name)
  if type(fn) ~= "function" then error("bad argument #1 to 'load' (function expected)", 2) end
  local parts = {}
  while true do
    local piece = fn()
    if piece == nil or piece == "" then break end
    parts[#parts + 1] = piece
  end
  return real.loadstring(table.concat(parts), name)
end

-- The failing line: the innermost frame of the user's chunk.
local chunk = mode == "functions" and "user_function" or "user_script"
local hooked = false
local function handler(e)
  debug_sethook()  -- a killed script's hook must not fire past this point
  hooked = false
  local line = -1
  for level = 2, 40 do
    local info = debug_getinfo(level, "Sl")
    if not info then break end
    if info.short_src == chunk and info.currentline >= 0 then line = info.currentline break end
  end
  if type(e) == "table" then
    local err = rawget(e, "err")
    if type(err) == "string" then return {err, line, 1} end
    return {tostring(e), line, 0}
  end
  if e == nil then return {"ERR nil", line, 1} end
  if type(e) == "userdata" then return {py.error_plain(e), line, py.error_kind(e)} end
  return {tostring(e), line, 0}
end

local function hook()
  -- A killed script raises again at every instruction (a pcall cannot swallow the kill),
  -- except inside the handler that reports it.
  local running = debug_getinfo(2, "f")
  if running and running.func == handler then return end
  local killed = py.tick()
  if killed then
    hooked = false
    debug_sethook(hook, "", 1)
    error({err = killed})
  end
end
-- The hook stays set between runs (one C call less a run) until something removes it or
-- changes its count: the next run sets it again then.
local function sethook()
  if not hooked then
    debug_sethook(hook, "", hook_count)
    hooked = true
  end
end

local api = {}
-- Compile a body: the function, or nil and Lua's message.
api.compile = function(code, name)
  if code:sub(1, 1) == "\27" then return nil, "binary chunks refused" end
  local f, e = loadstring(code, "@" .. name)
  if f then setfenv(f, env) end
  return f, e
end
-- KEYS and ARGV from a call's arguments: nkeys keys, then the arguments (cheaper than
-- building two tables from Python); the usual key counts without clearing a copy.
local function split(nkeys, ...)
  if nkeys == 1 then return {(...)}, {select(2, ...)} end
  if nkeys == 2 then
    local a, b = ...
    return {a, b}, {select(3, ...)}
  end
  if nkeys == 0 then return {}, {...} end
  local keys = {...}
  for i = select("#", ...), nkeys + 1, -1 do keys[i] = nil end
  return keys, {select(nkeys + 1, ...)}
end
-- Run a script with KEYS / ARGV: true, result | false, {message, line, kind}.
api.run_script = function(f, nkeys, ...)
  local keys, argv = split(nkeys, ...)
  rawset(real, "KEYS", keys)
  rawset(real, "ARGV", argv)
  sethook()
  return xpcall(f, handler)
end
api.run_script_tables = function(f, keys, argv)
  rawset(real, "KEYS", keys)
  rawset(real, "ARGV", argv)
  sethook()
  return xpcall(f, handler)
end
-- Run a function: fn(keys, args), through one trampoline (no closure per call).
local cur_f, cur_keys, cur_args
local function call_current()
  local f, keys, args = cur_f, cur_keys, cur_args
  cur_f, cur_keys, cur_args = nil, nil, nil
  return f(keys, args)
end
api.run_function = function(f, nkeys, ...)
  cur_keys, cur_args = split(nkeys, ...)
  cur_f = f
  sethook()
  return xpcall(call_current, handler)
end
api.run_function_tables = function(f, keys, args)
  cur_f, cur_keys, cur_args = f, keys, args
  sethook()
  return xpcall(call_current, handler)
end
api.ok = function(s) return {ok = s} end
-- n fresh {ok="OK"} tables at once (the usual status reply: one call into Lua for many).
api.oks = function(n)
  local t = {}
  for i = 1, n do t[i] = {ok = "OK"} end
  return unpack(t, 1, n)
end
api.err = function(s) return {err = s} end
api.array = function(...) return {...} end
-- Run a library body with the loading API: true | false, {message, line, kind}.
api.load_library = function(f)
  rawset(real, "redis", redis_load)
  sethook()
  local ok, e = xpcall(f, handler)
  rawset(real, "redis", redis_run)
  return ok, e
end
api.is_function = function(f) return type(f) == "function" end
api.kind = function(v) return type(v) end
api.unhook = function() debug_sethook() hooked = false end
-- redis.call and redis.pcall from now on (the engine's bridge, bound once).
api.set_calls = function(call, pcall) redis.call = call redis.pcall = pcall end
return api
"""
