"""Which modules a wheel compiles with mypyc, and which of them run compiled now.

Owns: ``MODULES``, the per-command hot path that ``setup.py`` hands to mypyc (chosen by
measurement: docs/performance.md). They are written in the subset of Python mypyc compiles
to native code, and they must keep working uncompiled: the suite runs on both builds.
Rules their code keeps (each broke a compiled run once; docs/performance.md): no
attributes added to instances from outside, no patching of their functions, no methods
replaced per instance, no interpreted subclass of their classes (unless the class says
``@mypyc_attr(allow_interpreted_subclasses=True)``), one type per exception name in a
function, an attribute checked against None and then changed by a call is read afresh
(mypy keeps the narrowed type; compiled code trusts it), and a ``dict`` subclass whose
truth differs from its size is typed ``Any``.

Never imported by the build itself (``setup.py`` reads this file as text): keep it free
of imports beyond the standard library.
"""

from __future__ import annotations

import importlib
import importlib.machinery

# The request path (read, dispatch, SET/GET, reply, the end-of-pass flush), and the
# replication stream on both sides (the primary's feed and backlog, the replica's link
# reader and apply, the shell's ports). server/replication_core.py's CoreReplication is
# compiled with ``allow_interpreted_subclasses``: the simulator's SimProcess subclasses it.
MODULES = (
    "ackdb.resp.reader",
    "ackdb.resp.ints",
    "ackdb.resp.request",
    "ackdb.engine.core",
    "ackdb.engine.client",
    "ackdb.engine.dispatch",
    "ackdb.engine.notify",
    "ackdb.server.network",
    "ackdb.server.node",
    "ackdb.server.replication_core",
    "ackdb.server.replication",
    "ackdb.keyspace.db",
    "ackdb.commands.strings",
    "ackdb.commands.base",
    "ackdb.engine.blocking",
    # Scripts' redis.call (issue 17) and the stream and geo commands (issue 18).
    "ackdb.commands.script_run",
    # EVALSHA's and FCALL's handlers, the Lua state's run and the reply conversions
    # (issue 17's bench rows: measured with bench/script_micro.py).
    "ackdb.commands.scripting",
    "ackdb.commands.functions",
    "ackdb.scripting.vm",
    "ackdb.scripting.convert",
    "ackdb.commands.streams",
    "ackdb.commands.streams_read",
    "ackdb.commands.geo",
    "ackdb.replication.wire",
    "ackdb.replication.actions",
    "ackdb.replication.replica",
    "ackdb.replication.engine",
    "ackdb.replication.state",
    "ackdb.replication.backlog",
    "ackdb.replication.stream",
    "ackdb.replication.primary",
    "ackdb.replication.driver",
    "ackdb.replication.waiters",
    "ackdb.replication.failover",
    "ackdb.replication.util",
    "ackdb.commands.replication",
    # The proxy endpoint's forward path (issue 14): a client's request to its shard
    # connection and the reply back.
    "ackdb.proxy.router",
    "ackdb.proxy.replies",
    "ackdb.proxy.session",
    "ackdb.proxy.shared",
    "ackdb.proxy.shell",
)


def is_compiled(module: str) -> bool:
    """Whether ``module`` was loaded from a C extension (its mypyc build)."""
    mod = importlib.import_module(module)
    path = getattr(mod, "__file__", None) or ""
    return path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def build_kind() -> str:
    """``compiled`` (every module of MODULES), ``pure`` (none) or ``partial (n/m)``."""
    n = sum(is_compiled(m) for m in MODULES)
    if n == len(MODULES):
        return "compiled"
    if n == 0:
        return "pure"
    return f"partial ({n}/{len(MODULES)})"
