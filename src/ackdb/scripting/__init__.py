"""Lua scripting and functions: the Lua 5.1 state (``vm``), its sandbox and libraries
(``prelude``, ``libs``), the conversions between Lua and RESP (``convert``), shebang
flags (``shebang``) and the function libraries (``functions``).

Never touches sockets, files or clocks: the engine hands it a ``Bridge`` that runs
commands and reads time, and runs its scripts on the caller's thread.
"""
