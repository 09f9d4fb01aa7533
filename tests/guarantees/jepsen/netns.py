"""A private network of Linux network namespaces for partition tests.

Owns: one "hub" namespace holding a bridge, one namespace per node with a veth into the
bridge, and a veth from the test's own (root) namespace into the bridge, all on one
/24 chosen at random in 10.0.0.0/8 so that concurrent runs do not collide. Partitions are
iptables DROP rules in the receiving node's namespace (``INPUT -s <sender>``), so a
one-way cut is one rule and a two-way cut two. Never touches the root namespace's
firewall or sysctls; ``close()`` deletes every namespace it made (their veths go with
them).

Needs root, ``ip`` and ``iptables``; ``available()`` says whether they work here, and
callers fall back to the fault proxy (tests/faultproxy.py) when they do not.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess

IP_TIMEOUT_S = 10.0


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=IP_TIMEOUT_S)


_AVAILABLE: bool | None = None


def available() -> bool:
    """True when namespaces, veths and iptables inside a namespace all work here."""
    global _AVAILABLE
    if _AVAILABLE is None:
        _AVAILABLE = False
        if os.geteuid() == 0 and shutil.which("ip") and shutil.which("iptables"):
            name = f"ackprobe{os.getpid() % 100000}"
            try:
                _run("ip", "netns", "add", name)
                _run("ip", "netns", "exec", name, "iptables", "-L", "INPUT", "-n")
                _AVAILABLE = True
            except (OSError, subprocess.SubprocessError):
                pass
            finally:
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    _run("ip", "netns", "del", name)
    return _AVAILABLE


class Network:
    """Namespaces for nodes ``names``; ``ip(name)`` is a node's address, ``wrap(name,
    argv)`` the command line that runs ``argv`` inside its namespace."""

    def __init__(self, names: list[str], seed: int | None = None) -> None:
        rng = random.Random(seed if seed is not None else os.getpid())
        tag = f"{os.getpid() % 10000:04d}{rng.randrange(100):02d}"
        self.prefix = f"10.{rng.randrange(64, 250)}.{rng.randrange(1, 250)}"
        self.hub = f"akh{tag}"
        self.names = list(names)
        self.ns: dict[str, str] = {}
        self.addr: dict[str, str] = {}
        self.rules: set[tuple[str, str]] = set()  # (receiver, sender) pairs dropped
        _run("ip", "netns", "add", self.hub)
        try:
            _run("ip", "netns", "exec", self.hub, "ip", "link", "add", "br0", "type", "bridge")
            _run("ip", "netns", "exec", self.hub, "ip", "link", "set", "br0", "up")
            self._attach_root(tag)
            for i, name in enumerate(self.names):
                self._attach_node(name, tag, i + 1)
        except BaseException:
            self.close()
            raise

    def _attach_root(self, tag: str) -> None:
        host, peer = f"akr{tag}", f"akR{tag}"
        _run("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
        _run("ip", "link", "set", peer, "netns", self.hub)
        _run("ip", "netns", "exec", self.hub, "ip", "link", "set", peer, "master", "br0", "up")
        _run("ip", "addr", "add", f"{self.prefix}.254/24", "dev", host)
        _run("ip", "link", "set", host, "up")

    def _attach_node(self, name: str, tag: str, i: int) -> None:
        ns = f"akn{tag}{i}"
        inner, outer = f"aki{tag}{i}", f"ako{tag}{i}"
        _run("ip", "netns", "add", ns)
        self.ns[name] = ns
        _run("ip", "netns", "exec", self.hub, "ip", "link", "add", outer, "type", "veth",
             "peer", "name", inner)  # fmt: skip
        _run("ip", "netns", "exec", self.hub, "ip", "link", "set", inner, "netns", ns)
        _run("ip", "netns", "exec", self.hub, "ip", "link", "set", outer, "master", "br0", "up")
        addr = f"{self.prefix}.{i}"
        self.addr[name] = addr
        _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{addr}/24", "dev", inner)
        _run("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    def ip(self, name: str) -> str:
        return self.addr[name]

    def wrap(self, name: str, argv: list[str]) -> list[str]:
        # `ip netns exec` execs the command: the pid is the server's own.
        return ["ip", "netns", "exec", self.ns[name], *argv]

    # -- partitions ---------------------------------------------------------------------

    def drop(self, receiver: str, sender: str) -> None:
        """Packets from ``sender`` to ``receiver`` are dropped (one way)."""
        if (receiver, sender) in self.rules:
            return
        _run("ip", "netns", "exec", self.ns[receiver], "iptables", "-A", "INPUT",
             "-s", self.addr[sender], "-j", "DROP")  # fmt: skip
        self.rules.add((receiver, sender))

    def cut(self, a: str, b: str) -> None:
        self.drop(a, b)
        self.drop(b, a)

    def heal(self) -> None:
        for receiver in {r for r, _ in self.rules}:
            _run("ip", "netns", "exec", self.ns[receiver], "iptables", "-F", "INPUT")
        self.rules.clear()

    def close(self) -> None:
        for ns in [*self.ns.values(), self.hub]:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                _run("ip", "netns", "del", ns)
        # The root end of the root<->hub veth goes with the hub namespace.


def stop_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process still running, wait up to 20 s each, SIGKILL what is left
    (the tests' processes inside the namespaces, before the network is closed)."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
