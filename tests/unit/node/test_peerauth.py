"""The peer links' handshake (ackdb.node.peerauth), sans-IO: both sides driven against
each other and against forged, replayed, reflected, garbage, oversized and late input."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ackdb.node import peerauth as pa
from ackdb.node.peerauth import (
    ACCEPTOR_LABEL,
    DIALER_LABEL,
    WRONG_SECRET,
    Acceptor,
    Action,
    Authenticated,
    Dialer,
    LogBudget,
    Refused,
    Send,
    State,
    join_proof,
    join_proof_ok,
    link_proof,
    peer_key,
)
from ackdb.resp.request import encode_command

KEY = peer_key(b"s" * 32)
OTHER = peer_key(b"o" * 32)
ADDR = "127.0.0.1:7101"


def nonces(tag: bytes) -> pa.Nonces:
    """Distinct, reproducible nonces: tag + a counter."""
    counter = itertools.count()
    return lambda: (tag + str(next(counter)).encode()).ljust(pa.NONCE_BYTES, b".")


def sends(actions: list[Action]) -> bytes:
    return b"".join(a.data for a in actions if isinstance(a, Send))


def feed(side: Dialer | Acceptor, data: bytes, byte_by_byte: bool = False) -> list[Action]:
    if not byte_by_byte:
        return side.receive_data(data)
    out: list[Action] = []
    for i in range(len(data)):
        out.extend(side.receive_data(data[i : i + 1]))
    return out


def pair(dkey: bytes = KEY, akey: bytes = KEY) -> tuple[Dialer, Acceptor]:
    return Dialer("n1", ADDR, "n2", dkey, nonces(b"d")), Acceptor("n2", akey, nonces(b"a"))


def handshake(
    d: Dialer, a: Acceptor, byte_by_byte: bool = False
) -> tuple[list[Action], list[Action], list[bytes]]:
    """Run the four flights; returns every action of each side and the dialler's
    bytes (for replays)."""
    sent = [d.start()]
    a_out = feed(a, sent[0], byte_by_byte)
    d_out = feed(d, sends(a_out), byte_by_byte)
    sent.append(sends(d_out))
    if sent[-1]:
        more = feed(a, sent[-1], byte_by_byte)
        a_out += more
        if sends(more):
            d_out += feed(d, sends(more), byte_by_byte)
    return d_out, a_out, sent


@pytest.mark.parametrize("byte_by_byte", [False, True])
def test_good_handshake_whole_and_byte_by_byte(byte_by_byte: bool) -> None:
    d, a = pair()
    d_out, a_out, _ = handshake(d, a, byte_by_byte)
    assert Authenticated("n1", ADDR) in a_out
    assert d_out[-1] == Authenticated("n2", "")
    assert d.state is State.DONE and a.state is State.DONE
    assert not any(isinstance(x, Refused) for x in d_out + a_out)


@given(st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=10))
def test_any_split_of_the_flights_authenticates(cuts: list[int]) -> None:
    d, a = pair()

    def split(data: bytes) -> list[bytes]:
        out, i = [], 0
        for c in itertools.cycle(cuts):
            if i >= len(data):
                return out
            out.append(data[i : i + c])
            i += c
        raise AssertionError

    a_out: list[Action] = []
    for chunk in split(d.start()):
        a_out += a.receive_data(chunk)
    d_out: list[Action] = []
    for chunk in split(sends(a_out)):
        d_out += d.receive_data(chunk)
    a_out = []
    for chunk in split(sends(d_out)):
        a_out += a.receive_data(chunk)
    d_out = []
    for chunk in split(sends(a_out)):
        d_out += d.receive_data(chunk)
    assert a_out[-1] == Authenticated("n1", ADDR) and d_out == [Authenticated("n2", "")]


def test_wrong_secret_is_refused_by_the_acceptor_first() -> None:
    d, a = pair(dkey=OTHER)
    d_out, a_out, _ = handshake(d, a)
    assert a_out[-1] == Refused(WRONG_SECRET)
    assert a.state is State.FAILED and a.peer_id == "n1"
    # The acceptor never proved anything to a dialler without the secret.
    assert sends(a_out).count(b"PROOF") == 0
    assert d.state is State.PROOF_WAIT  # its connection is closed by the acceptor
    assert "does not accept this node's cluster secret" in d.lost_reason()


def test_dialer_refuses_a_forged_acceptor_proof() -> None:
    d, a = pair(akey=OTHER)
    a.receive_data(d.start())
    challenge = encode_command((b"CHALLENGE", b"n2", b"c" * pa.NONCE_BYTES))
    d.receive_data(challenge)
    assert d.receive_data(encode_command((b"PROOF", b"x" * 32))) == [Refused(WRONG_SECRET)]
    # Nor will a proof made with another key do.
    d2 = Dialer("n1", ADDR, "n2", KEY, nonces(b"d"))
    d2.start()
    d2.receive_data(challenge)
    forged = link_proof(OTHER, ACCEPTOR_LABEL, "n1", ADDR, "n2", d2.nonce, b"c" * pa.NONCE_BYTES)
    assert d2.receive_data(encode_command((b"PROOF", forged))) == [Refused(WRONG_SECRET)]


def test_replayed_dialer_flights_are_refused() -> None:
    d, a = pair()
    _, a_out, recorded = handshake(d, a)
    assert Authenticated("n1", ADDR) in a_out
    # A listener who recorded the dialler's bytes replays them to the same member: the
    # member's nonce is new, so the recorded proof is worthless.
    a2 = Acceptor("n2", KEY, nonces(b"a2"))
    a2.receive_data(recorded[0])
    assert a2.receive_data(recorded[1]) == [Refused(WRONG_SECRET)]


def test_replayed_acceptor_flights_are_refused() -> None:
    d, a = pair()
    d.start()
    a_flights: list[bytes] = []
    a_out = a.receive_data(Dialer("n1", ADDR, "n2", KEY, nonces(b"x")).start())
    a_flights.append(sends(a_out))
    # An impostor at n2's address replays n2's old answers to a new dialler.
    d.receive_data(a_flights[0])
    old = link_proof(KEY, ACCEPTOR_LABEL, "n1", ADDR, "n2", b"old".ljust(32, b"."), a.nonce)
    assert d.receive_data(encode_command((b"PROOF", old))) == [Refused(WRONG_SECRET)]


def test_reflection_a_proof_of_one_direction_is_not_one_of_the_other() -> None:
    d, a = pair()
    a_out = a.receive_data(d.start())
    assert sends(a_out).startswith(b"*3\r\n$9\r\nCHALLENGE")
    # An attacker who could get the acceptor-labelled MAC of these nonces could not use
    # it as the dialler's proof.
    reflected = link_proof(KEY, ACCEPTOR_LABEL, "n1", ADDR, "n2", d.nonce, a.nonce)
    assert a.receive_data(encode_command((b"PROOF", reflected))) == [Refused(WRONG_SECRET)]


def test_proofs_bind_both_ids_the_address_and_both_nonces() -> None:
    n1, n2 = b"1" * 32, b"2" * 32
    base = link_proof(KEY, DIALER_LABEL, "n1", ADDR, "n2", n1, n2)
    assert len(base) == pa.MAC_BYTES
    for other in (
        link_proof(KEY, DIALER_LABEL, "n3", ADDR, "n2", n1, n2),
        link_proof(KEY, DIALER_LABEL, "n1", "127.0.0.1:1", "n2", n1, n2),
        link_proof(KEY, DIALER_LABEL, "n1", ADDR, "n3", n1, n2),
        link_proof(KEY, DIALER_LABEL, "n1", ADDR, "n2", n2, n1),
        link_proof(OTHER, DIALER_LABEL, "n1", ADDR, "n2", n1, n2),
        # length prefixes: moving a byte between fields changes the proof
        link_proof(KEY, DIALER_LABEL, "n1" + ADDR[:1], ADDR[1:], "n2", n1, n2),
    ):
        assert other != base


HELLO = encode_command((b"HELLO", b"n1", ADDR.encode(), b"h" * pa.NONCE_BYTES))


@pytest.mark.parametrize(
    "data, why",
    [
        (b"GET / HTTP/1.1\r\n\r\n", "not a peer (first byte b'G')"),
        (b"\x16\x03\x01\x02\x00", "not a peer"),  # a TLS client hello
        (encode_command((b"PING",)), "expected HELLO, got b'PING' with 0 arguments"),
        (encode_command((b"HELLO", b"n1", ADDR.encode())), "expected HELLO"),
        (encode_command((b"RAFT", b"\x93\x01")), "expected HELLO, got b'RAFT'"),
        (encode_command((b"HELLO", b"n 1", ADDR.encode(), b"h" * 32)), "bad node id in HELLO"),
        (encode_command((b"HELLO", b"n1", b"nohost", b"h" * 32)), "bad HELLO"),
        (encode_command((b"HELLO", b"\xff", ADDR.encode(), b"h" * 32)), "bad HELLO"),
        (encode_command((b"HELLO", b"n1", ADDR.encode(), b"short")), "a nonce is 32 bytes"),
        (encode_command((b"HELLO", b"n2", ADDR.encode(), b"h" * 32)), "claims to be this node"),
        (HELLO + encode_command((b"RAFT", b"x")), "expected PROOF, got b'RAFT'"),
        (HELLO + encode_command((b"PROOF",)), "expected PROOF"),
        (HELLO + HELLO, "expected PROOF, got b'HELLO'"),
        (HELLO + encode_command((b"PROOF", b"p" * 32)), WRONG_SECRET),
        (b"*abc\r\n", "protocol error"),
        (b"*1\r\n$600\r\n", "protocol error"),  # longer than an argument may be
        (b"*20\r\n", "protocol error"),  # more arguments than a handshake frame has
        (b"*8\r\n" + (b"$130\r\n" + b"x" * 130 + b"\r\n") * 8, "longer than 1024|max query buffer"),
    ],
)
@pytest.mark.parametrize("byte_by_byte", [False, True])
def test_acceptor_refuses(data: bytes, why: str, byte_by_byte: bool) -> None:
    a = Acceptor("n2", KEY, nonces(b"a"))
    out = feed(a, data, byte_by_byte)
    refused = [x for x in out if isinstance(x, Refused)]
    assert len(refused) == 1 and any(w in refused[0].reason for w in why.split("|")), out
    assert not any(isinstance(x, Authenticated) for x in out)
    assert b"PROOF" not in sends(out)
    assert a.state is State.FAILED and a.receive_data(b"*1\r\n") == []


def test_acceptor_refuses_frames_sent_before_its_proof() -> None:
    # A real dialler waits for the acceptor's proof; frames riding with its own proof
    # mean a peer that does not, and nothing of that chunk is accepted.
    d, a = pair()
    a_out = a.receive_data(d.start())
    proof = sends(d.receive_data(sends(a_out)))
    out = a.receive_data(proof + encode_command((b"RAFT", b"x")))
    assert out == [Refused("frames before the handshake finished")]
    for early in (b"*2\r\n$4\r\nRA", b"*2\r\n", b"*2\r\n$4\r\nRAFT\r\n", b"PI"):
        d, a = pair()
        proof = sends(d.receive_data(sends(a.receive_data(d.start()))))
        assert a.receive_data(proof + early) == [Refused("frames before the handshake finished")]


@pytest.mark.parametrize(
    "data, why",
    [
        (b"-ERR nope\r\n", "not a peer"),
        (encode_command((b"CHALLENGE", b"n2")), "expected CHALLENGE"),
        (encode_command((b"CHALLENGE", b"n2", b"short")), "expected CHALLENGE"),
        (encode_command((b"CHALLENGE", b"n3", b"c" * 32)), "'n3' answered where n2 was expected"),
        (encode_command((b"PROOF", b"p" * 32)), "expected CHALLENGE, got b'PROOF'"),
        (
            encode_command((b"CHALLENGE", b"n2", b"c" * 32)) + encode_command((b"RAFT", b"x")),
            "expected PROOF, got b'RAFT'",
        ),
    ],
)
def test_dialer_refuses(data: bytes, why: str) -> None:
    d = Dialer("n1", ADDR, "n2", KEY, nonces(b"d"))
    d.start()
    out = d.receive_data(data)
    assert isinstance(out[-1], Refused) and why in out[-1].reason, out
    assert not any(isinstance(x, Authenticated) for x in out)


def test_dialer_refuses_data_after_the_acceptor_proof() -> None:
    d, a = pair()
    a_out = a.receive_data(d.start())
    proof = sends(d.receive_data(sends(a_out)))
    a_proof = sends(a.receive_data(proof))
    out = d.receive_data(a_proof + b"+junk\r\n")
    assert isinstance(out[-1], Refused) and not any(isinstance(x, Authenticated) for x in out)


def test_expire_is_a_refusal_until_done() -> None:
    d, a = pair()
    d.start()
    assert a.expire() == Refused("no handshake in time (stuck in hello-wait)")
    assert a.expire() is None  # already failed
    d2, a2 = pair()
    handshake(d2, a2)
    assert d2.expire() is None and a2.expire() is None
    d3 = Dialer("n1", ADDR, "n2", KEY, nonces(b"d"))
    d3.start()
    assert d3.expire() == Refused("no handshake in time (stuck in challenge-wait)")
    assert "before its challenge" in d3.lost_reason()


def test_join_proof() -> None:
    p = join_proof(KEY, "n4", "h:1", "h:2").hex().encode()
    assert join_proof_ok(KEY, "n4", "h:1", "h:2", p)
    assert not join_proof_ok(OTHER, "n4", "h:1", "h:2", p)
    assert not join_proof_ok(KEY, "n5", "h:1", "h:2", p)
    assert not join_proof_ok(KEY, "n4", "h:1", "h:3", p)
    assert not join_proof_ok(KEY, "n4", "h:1", "h:2", b"")
    # A join proof is never a link proof (different label).
    assert join_proof(KEY, "n4", "h:1", "h:2") != link_proof(
        KEY, DIALER_LABEL, "n4", "h:1", "h:2", b"", b""
    )


def test_log_budget() -> None:
    b = LogBudget(lines=2, window_ms=1000)
    assert b.allow(0) == (True, 0)
    assert b.allow(10) == (True, 0)
    assert b.allow(20) == (False, 0)
    assert b.allow(999) == (False, 0)
    assert b.suppressed == 2
    assert b.allow(1000) == (True, 2)  # a new window says how many were left out
    assert b.allow(1001) == (True, 0)
    assert b.allow(1002) == (False, 0)
