"""The shard supervisor's files and processes, as the operating system shows them: the
cluster secret, unit directories and their pid files, ``/proc``, signals.

Owns: finding the units a node's data directory holds and whether their processes still
run (``find_units``: the pid file, then ``/proc/<pid>/cmdline`` naming the unit's own
file, so a reused pid is never taken for a shard), stopping leftovers for the command
line (``stop_leftovers``), the clean-stop mark a shard's directory gets when its process
exited cleanly at the agent's stop (``CLEAN_STOP``: the role and epoch it stopped in), and
small file helpers (atomic writes with a mode). Decides nothing; node/shards.py uses it,
and so does ``ackdb cluster down``.
"""

from __future__ import annotations

import os
import signal
import time

from ackdb.node import secrets

SECRET_FILE = "cluster.secret"
# In a shard directory: "<mode> <epoch>" of a process that exited with status 0 when its
# agent stopped (its final fsync / snapshot done); removed before the next start.
CLEAN_STOP = "clean-stop"
STOP_TIMEOUT_S = 5.0  # SIGTERM -> SIGKILL
POLL_S = 0.1


def load_or_create_secret(data_dir: str) -> bytes:
    """The cluster secret of ``data_dir``, created if missing (until bootstrap creates it
    and joining nodes receive it, a single node makes its own)."""
    path = os.path.join(data_dir, SECRET_FILE)
    if not os.path.exists(path):
        secrets.write_secret(path, secrets.new_secret())
    return secrets.read_secret(path)


def alive(pid: int) -> bool:
    """Running (not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rpartition(b")")[2].split()[:1] != [b"Z"]


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")]
    except OSError:
        return []


def exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def find_units(base: str) -> list[tuple[str, int | None]]:
    """The unit directories under the data directory ``base``, each with the pid of its
    process if that still runs: the pid file names a live process whose command line
    holds the unit's own file (its config, or the proxy's or coordinator's log), so a reused pid is not
    taken for it."""
    out: list[tuple[str, int | None]] = []
    for kind, pid_name, marks in (
        ("shards", "shard.pid", ("shard.conf",)),
        ("proxies", "proxy.pid", ("proxy.log", "coordinator.log")),  # (coordinator: issue 16)
    ):
        top = os.path.join(base, kind)
        try:
            names = sorted(os.listdir(top))
        except FileNotFoundError:
            continue
        for name in names:
            d = os.path.join(top, name)
            if not os.path.isdir(d):
                continue
            pid = read_pid(os.path.join(d, pid_name))
            if pid is not None and not (alive(pid) and _names_one(cmdline(pid), d, marks)):
                pid = None
            out.append((f"{kind}/{name}", pid))
    return out


def _names_one(argv: list[str], d: str, marks: tuple[str, ...]) -> bool:
    return any(os.path.join(d, m) in argv for m in marks)


def stop_leftovers(base: str, timeout_s: float = STOP_TIMEOUT_S) -> list[int]:
    """Stop the shard and proxy processes still running for the node whose data
    directory is ``base`` (its agent is gone: ``ackdb cluster down`` after an agent
    crash): SIGTERM, then SIGKILL after ``timeout_s``. Blocking; for command-line tools,
    never the agent. Returns the pids it stopped."""
    pids = [pid for _, pid in find_units(os.path.abspath(base)) if pid is not None]
    for pid in pids:
        send_signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    for pid in pids:
        if alive(pid):
            send_signal(pid, signal.SIGKILL)
    return pids


def send_signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def read_pid(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def config_port(path: str) -> int | None:
    """The ``port`` line of a shard's config file, if it can be read."""
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.strip().partition(" ")
                if key == "port" and value.strip().isdigit():
                    return int(value)
    except (OSError, UnicodeDecodeError):
        return None
    return None


def write_file(path: str, text: str, mode: int) -> None:
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def read_clean_stop(d: str) -> tuple[str, int] | None:
    """The (mode, epoch) of a shard directory's clean-stop mark, if it has a valid one."""
    try:
        with open(os.path.join(d, CLEAN_STOP)) as f:
            mode, epoch = f.read().split()
        return mode, int(epoch)
    except (OSError, ValueError):
        return None


def clear_clean_stop(d: str) -> None:
    try:
        os.unlink(os.path.join(d, CLEAN_STOP))
    except FileNotFoundError:
        pass
