"""LATENCY LATEST / HISTORY / RESET / DOCTOR / HISTOGRAM / HELP, MODULE LIST / LOAD / LOADEX / UNLOAD /
HELP, and LOLWUT.

Owns: Redis 7.2's replies and errors of these commands over what ackdb has: the latency
monitor's series (``engine.latency``), the per-command histograms
(``engine.cmdlatency``), no modules (MODULE LIST is empty; LOAD, LOADEX and
UNLOAD are refused as Redis refuses them under ``enable-module-command``, and when it
allows them, with Redis's load / unload failure and a log line saying why), and LOLWUT's
version line (its art is ackdb's own). Never touches the network.

LATENCY DOCTOR reports the events, their spike counts, averages and worst cases in Redis's
words, without Redis's advice paragraphs about its own internals; LATENCY GRAPH is not
there.
"""

from __future__ import annotations

from .. import REDIS_COMPAT_VERSION
from ..engine.client import Client
from ..resp import encoder as enc
from .base import CommandError, arg_int
from .server_admin import is_local_client
from .table import handler


@handler("latency|latest")
def latency_latest(c: Client, argv: list[bytes]) -> bytes:
    rows = []
    for name, ts in c.server.latency.events.items():
        last_s, last_ms = ts.samples[-1]
        rows.append(
            enc.array(
                [
                    enc.bulk(name.encode()),
                    enc.integer(last_s),
                    enc.integer(last_ms),
                    enc.integer(ts.max_ms),
                ]
            )
        )
    return enc.array(rows)


@handler("latency|histogram")
def latency_histogram(c: Client, argv: list[bytes]) -> bytes:
    # Redis: every command with a histogram, or the named ones (and a container's
    # subcommands) in the order given; a command without data is left out.
    tracker = c.server.cmd_latency
    entries = tracker.entries_named(argv[2:]) if len(argv) > 2 else c.server.dispatch.every()
    p = c.p
    pairs: list[tuple[bytes, bytes]] = []
    for e in entries:
        hist = tracker.shown(e)
        if hist is None:
            continue
        steps = tracker.cdf(hist)
        body = p.map_encoded(
            [
                (enc.bulk(b"calls"), enc.integer(sum(hist))),
                (
                    enc.bulk(b"histogram_usec"),
                    p.map_encoded([(enc.integer(us), enc.integer(n)) for us, n in steps]),
                ),
            ]
        )
        pairs.append((enc.bulk(e.name.encode()), body))
    return p.map_encoded(pairs)


@handler("latency|history")
def latency_history(c: Client, argv: list[bytes]) -> bytes:
    ts = c.server.latency.events.get(argv[2].decode("utf-8", "replace"))
    if ts is None:
        return enc.array([])
    return enc.array([enc.array([enc.integer(s), enc.integer(ms)]) for s, ms in ts.samples])


@handler("latency|reset")
def latency_reset(c: Client, argv: list[bytes]) -> bytes:
    names = [a.decode("utf-8", "replace") for a in argv[2:]] or None
    return enc.integer(c.server.latency.reset(names))


_DISABLED = (
    "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis "
    'instance. You may use "CONFIG SET latency-monitor-threshold <milliseconds>." in order '
    "to enable it. If we weren't in a deep space mission I'd suggest to take a look at "
    "https://redis.io/topics/latency-monitor.\n"
)
_QUIET = (
    "Dave, no latency spike was observed during the lifetime of this Redis instance, not in "
    "the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, "
    "and think things over.\n"
)


def doctor_text(events: dict[str, object], threshold_ms: int) -> str:
    if not threshold_ms and not events:
        return _DISABLED
    if not events:
        return _QUIET
    lines = [
        "Dave, I have observed latency spikes in this Redis instance. You don't mind talking "
        "about it, do you Dave?\n"
    ]
    for i, (name, ts) in enumerate(events.items(), start=1):
        samples = ts.samples  # type: ignore[attr-defined]
        avg = sum(ms for _, ms in samples) // len(samples)
        lines.append(
            f"{i}. {name}: {len(samples)} latency spikes (average {avg}ms). "
            f"Worst all time event {ts.max_ms}ms."  # type: ignore[attr-defined]
        )
    return "\n".join(lines) + "\n"


@handler("latency|doctor")
def latency_doctor(c: Client, argv: list[bytes]) -> bytes:
    mon = c.server.latency
    return c.p.verbatim(doctor_text(dict(mon.events), mon.threshold_ms).encode())


_LATENCY_HELP = [
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the"
    " specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Print this help.",
]


@handler("latency|help")
def latency_help(c: Client, argv: list[bytes]) -> bytes:
    return enc.array([enc.simple(s) for s in _LATENCY_HELP])


# -- MODULE -------------------------------------------------------------------------------

_MODULE_DENIED = (
    'ERR MODULE command not allowed. If the enable-module-command option is set to "local", '
    "you can run it from a local connection, otherwise you need to set this option in the "
    "configuration file, and then restart the server."
)


def _module_allowed(c: Client) -> None:
    mode = c.server.config.get("enable-module-command")
    if not (mode == "yes" or (mode == "local" and is_local_client(c))):
        raise CommandError(_MODULE_DENIED)


@handler("module|list")
def module_list(c: Client, argv: list[bytes]) -> bytes:
    return enc.array([])


def _no_modules(c: Client, what: str) -> None:
    log = getattr(c.server, "log", None)
    if log is not None:
        log.warning(f"Module {what} refused: ackdb does not load modules")


@handler("module|load")
def module_load(c: Client, argv: list[bytes]) -> bytes:
    _module_allowed(c)
    _no_modules(c, argv[2].decode("utf-8", "replace"))
    raise CommandError("ERR Error loading the extension. Please check the server logs.")


@handler("module|loadex")
def module_loadex(c: Client, argv: list[bytes]) -> bytes:
    return module_load(c, argv)


@handler("module|unload")
def module_unload(c: Client, argv: list[bytes]) -> bytes:
    _module_allowed(c)
    raise CommandError("ERR Error unloading module: no such module with that name")


_MODULE_HELP = [
    "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LIST",
    "    Return a list of loaded modules.",
    "LOAD <path> [<arg> ...]",
    "    Load a module library from <path>, passing to it any optional arguments.",
    "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
    "    Load a module library from <path>, while passing it module configurations and optional arguments.",
    "UNLOAD <name>",
    "    Unload a module.",
    "HELP",
    "    Print this help.",
]


@handler("module|help")
def module_help(c: Client, argv: list[bytes]) -> bytes:
    return enc.array([enc.simple(s) for s in _MODULE_HELP])


# -- LOLWUT -------------------------------------------------------------------------------

_ART = (
    "   _   ___ _  _____  ___\n"
    "  /_\\ / __| |/ /   \\| _ )\n"
    " / _ \\ (__| ' <| |) | _ \\\n"
    "/_/ \\_\\___|_|\\_\\___/|___/\n\n"
)


@handler("lolwut")
def lolwut(c: Client, argv: list[bytes]) -> bytes:
    version = 7  # the major of REDIS_COMPAT_VERSION: the version line alone
    if len(argv) >= 3 and argv[1].lower() == b"version":
        version = arg_int(argv[2])
    art = _ART if version in (5, 6) else ""
    return c.p.verbatim(f"{art}Redis ver. {REDIS_COMPAT_VERSION}\n".encode())
