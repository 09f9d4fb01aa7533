"""CLIENT REPLY, CLIENT TRACKING, CLIENT CACHING, CLIENT GETREDIR, CLIENT TRACKINGINFO.

Owns: Redis 7.2's option grammar, checks, error texts and replies of these subcommands
(networking.c clientCommand). The reply muting itself is the core's
(``Server.set_reply_mode``, applied on the checked path); the tables and the
invalidation messages are ``engine.tracking``'s. Never touches the network.
"""

from __future__ import annotations

from ..engine.client import Client
from ..engine.tracking import TrackingState
from ..resp import encoder as enc
from ..resp.encoder import Resp2
from .base import SYNTAX, CommandError, arg_int
from .table import handler

_PREFIX_OVERLAP = (
    "ERR Prefix '{}' overlaps with {} prefix '{}'. Prefixes for a single client must not overlap."
)


@handler("client|reply")
def client_reply(c: Client, argv: list[bytes]) -> bytes:
    if not c.server.set_reply_mode(c, argv[2].lower()):
        raise CommandError(SYNTAX)
    return enc.OK  # muted by the core unless the mode is ON


def _overlap(a: bytes, b: bytes) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _text(b: bytes) -> str:
    return b.split(b"\0")[0].decode("utf-8", "replace")


def _check_prefixes(st: TrackingState | None, prefixes: list[bytes]) -> None:
    """Redis's checkPrefixCollisionsOrReply. (Redis 7.0 answers a clash among the given
    prefixes, past the first one, with the error *and* OK, and enables them: ackdb
    answers the error alone; docs/compat.md.)"""
    for i, p in enumerate(prefixes):
        for old in st.prefixes if st is not None else ():
            if _overlap(old, p):
                raise CommandError(_PREFIX_OVERLAP.format(_text(p), "an existing", _text(old)))
        for q in prefixes[i + 1 :]:
            if _overlap(p, q):
                raise CommandError(_PREFIX_OVERLAP.format(_text(p), "another provided", _text(q)))


def _parse(c: Client, argv: list[bytes]) -> tuple[int, set[bytes], list[bytes]]:
    redirect = 0
    opts: set[bytes] = set()
    prefixes: list[bytes] = []
    j, n = 3, len(argv)
    while j < n:
        word = argv[j].lower()
        more = n - 1 - j
        if word == b"redirect" and more:
            j += 1
            if redirect:
                raise CommandError("ERR A client can only redirect to a single other client")
            redirect = arg_int(argv[j])
            if redirect not in c.server.clients:
                raise CommandError("ERR The client ID you want redirect to does not exist")
        elif word in (b"bcast", b"optin", b"optout", b"noloop"):
            opts.add(word)
        elif word == b"prefix" and more:
            j += 1
            prefixes.append(argv[j])
        else:
            raise CommandError(SYNTAX)
        j += 1
    return redirect, opts, prefixes


def _check_on(c: Client, opts: set[bytes], prefixes: list[bytes]) -> None:
    st = c.tracking
    bcast = b"bcast" in opts
    if not bcast and prefixes:
        raise CommandError("ERR PREFIX option requires BCAST mode to be enabled")
    if st is not None and st.bcast != bcast:
        raise CommandError(
            "ERR You can't switch BCAST mode on/off before disabling tracking for this "
            "client, and then re-enabling it with a different mode."
        )
    if bcast and opts & {b"optin", b"optout"}:
        raise CommandError("ERR OPTIN and OPTOUT are not compatible with BCAST")
    if {b"optin", b"optout"} <= opts:
        raise CommandError("ERR You can't specify both OPTIN mode and OPTOUT mode")
    if st is not None and ((b"optin" in opts and st.optout) or (b"optout" in opts and st.optin)):
        raise CommandError(
            "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this "
            "client, and then re-enabling it with a different mode."
        )
    if bcast:
        _check_prefixes(st, prefixes)


@handler("client|tracking")
def client_tracking(c: Client, argv: list[bytes]) -> bytes:
    redirect, opts, prefixes = _parse(c, argv)
    mode = argv[2].lower()
    tracking = c.server.tracking
    if mode == b"on":
        _check_on(c, opts, prefixes)
        tracking.enable(c, redirect, opts, prefixes)
    elif mode == b"off":
        tracking.disable(c)
    else:
        raise CommandError(SYNTAX)
    return enc.OK


@handler("client|caching")
def client_caching(c: Client, argv: list[bytes]) -> bytes:
    st = c.tracking
    if st is None:
        raise CommandError(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode "
            "with OPTIN or OPTOUT mode enabled"
        )
    word = argv[2].lower()
    if word == b"yes":
        if not st.optin:
            raise CommandError(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
            )
    elif word == b"no":
        if not st.optout:
            raise CommandError(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."
            )
    else:
        raise CommandError(SYNTAX)
    st.caching = True
    return enc.OK


@handler("client|getredir")
def client_getredir(c: Client, argv: list[bytes]) -> bytes:
    st = c.tracking
    return enc.integer(-1 if st is None else st.redirect)


@handler("client|trackinginfo")
def client_trackinginfo(c: Client, argv: list[bytes]) -> bytes:
    p: Resp2 = c.p
    st = c.tracking
    flags = [b"off"] if st is None else [b"on"]
    if st is not None:
        flags += [b"bcast"] if st.bcast else []
        flags += [b"optin"] + [b"caching-yes"] * st.caching if st.optin else []
        flags += [b"optout"] + [b"caching-no"] * st.caching if st.optout else []
        flags += [b"noloop"] if st.noloop else []
        flags += [b"broken_redirect"] if st.broken_redirect else []
    prefixes = sorted(st.prefixes) if st is not None else []
    return p.map_encoded(
        [
            (enc.bulk(b"flags"), p.set_header(len(flags)) + b"".join(map(enc.bulk, flags))),
            (enc.bulk(b"redirect"), enc.integer(-1 if st is None else st.redirect)),
            (enc.bulk(b"prefixes"), enc.bulk_array(prefixes)),
        ]
    )
