"""PUBLISH delivery in process (server/pubsub.py): the exact frames each subscriber gets."""

from __future__ import annotations

from conftest import Harness


def test_publish_sends_an_array_to_resp2_and_a_push_to_resp3_subscribers() -> None:
    """One channel, subscribers of both protocols and a pattern subscriber: each gets the
    frame of its protocol, and the reply counts every delivery."""
    h = Harness()
    pub, s2, s3, p2 = h.client(), h.client(), h.client(), h.client()
    h.run(s3, "HELLO", "3")
    for s in (s2, s3):
        h.run(s, "SUBSCRIBE", "news")
    h.run(p2, "PSUBSCRIBE", "n*")
    for s in (s2, s3, p2):
        s.conn.written.clear()
    assert h.run(pub, "PUBLISH", "news", "hi") == b":3\r\n"
    body = b"$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
    assert s2.conn.written == [b"*3\r\n" + body]
    assert s3.conn.written == [b">3\r\n" + body]
    assert p2.conn.written == [b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"]
    assert h.run(pub, "PUBLISH", "news", "") == b":3\r\n"
    assert s2.conn.written[-1] == b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$0\r\n\r\n"
    assert h.run(pub, "PUBLISH", "other", "x") == b":0\r\n"


def test_publish_to_one_subscriber_answers_one() -> None:
    h = Harness()
    pub, s = h.client(), h.client()
    h.run(s, "SUBSCRIBE", "c")
    assert h.run(pub, "PUBLISH", "c", "m") == b":1\r\n"
    assert s.conn.written[-1] == b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"
