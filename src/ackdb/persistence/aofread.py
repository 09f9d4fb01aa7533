"""Reading AOF files of RESP commands: commands with byte offsets, truncation, corruption.

Owns: parsing one file of ``*N $len arg ...`` commands (hiredis does the parsing; the
byte offset after each command is its canonical encoded length added up, and wherever an
offset is acted upon -- a cut, an error -- the bytes before it are compared with the
re-encoded last command, so a non-canonical encoding cannot shift a cut), grouping MULTI ... EXEC so a
transaction is applied whole or not at all, and telling apart the two ways a file can
end badly:

- **truncated**: a crash mid-write leaves a prefix of the last write, so the file ends
  inside its last command (or inside an unfinished MULTI, or in a run of zero bytes a
  crashed filesystem may leave). Everything before that point is intact.
- **corrupt**: bytes that are not a command, or a damaged length that swallows later
  commands. A truncation is only believed when nothing after the cut parses as a
  command; otherwise the file is corrupt, whatever ``aof-load-truncated`` says (Redis
  would drop the rest of such a file silently).

Never executes anything and never writes; the loader and ``ackdb check-aof`` use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import hiredis

from .aof import encode_command

# Bytes fed to hiredis at a time. Small on purpose: hiredis moves the unread rest of its
# buffer down after every 1 KiB consumed, so a big buffer makes parsing quadratic
# (measured on 300k SETs: 4 MiB chunks 0.58 s, 256 KiB 0.25 s, 32 KiB 0.19 s).
READ_CHUNK_BYTES = 32 * 1024
# Candidate command starts examined after a cut before it is called a truncation.
RESYNC_PROBES_MAX = 1000
# A MULTI left open at the end is dropped whole; inside a file this many queued commands
# without EXEC is corruption, not a transaction.
MULTI_COMMANDS_MAX = 1 << 20


class AofFormatError(Exception):
    """The file is not a valid AOF at ``offset`` (bytes)."""

    def __init__(self, msg: str, offset: int) -> None:
        super().__init__(msg)
        self.msg = msg
        self.offset = offset


class AofReader:
    """``for cmds, end in reader.transactions(): ...`` yields each top-level command (a
    list of one argv) or each MULTI/EXEC block (its inner commands) with the byte offset
    just after it. When the iteration ends, ``valid_bytes`` is the length of the intact
    prefix and ``truncated_bytes`` how many bytes after it belong to a cut last write."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f = f
        self.size = size
        self.valid_bytes = 0
        self.truncated_bytes = 0
        self.commands = 0
        self._last_cmd: list[bytes] | None = None

    def batches(self) -> Iterator[tuple[list[list[bytes]], int]]:
        """The loader's fast path: (commands to run, bytes read so far) per chunk read,
        MULTI blocks included once their EXEC arrived. Offsets are not computed while
        all is well (that costs as much as parsing); at the first anomaly the file is
        scanned again exactly (``transactions``) to find the cut or the corruption, and
        the commands after that point are never returned."""
        reader = hiredis.Reader()
        fed = 0
        multi: list[list[bytes]] | None = None
        good = 0  # complete units (a bare command or a whole MULTI block) returned
        seen = 0
        batch: list[list[bytes]] = []
        anomaly = False
        while True:
            chunk = self.f.read(READ_CHUNK_BYTES)
            if chunk:
                reader.feed(chunk)
                fed += len(chunk)
            try:
                while True:
                    cmd = reader.gets()
                    if cmd is False:
                        break
                    if cmd.__class__ is not list or not cmd:
                        raise _Anomaly
                    b"".join(cmd)  # TypeError unless every argument is a bulk string
                    seen += 1
                    name = cmd[0]
                    if len(name) in (4, 5) and name.lower() in (b"multi", b"exec"):
                        if name.lower() == b"multi":
                            if multi is not None:
                                raise _Anomaly
                            multi = []
                        else:
                            if multi is None:
                                raise _Anomaly
                            batch.extend(multi)
                            multi = None
                            good += 1
                    elif multi is not None:
                        multi.append(cmd)
                    else:
                        batch.append(cmd)
                        good += 1
            except (hiredis.ProtocolError, TypeError, _Anomaly):
                # The units parsed before the anomaly are intact (``good`` counts them):
                # return them too, or a tail the exact scan finds to be a mere cut (a run
                # of zero bytes) would silently lose the rest of this chunk.
                anomaly = True
            if batch:
                yield batch, fed
                batch = []
            if anomaly:
                break
            if not chunk:
                if not reader.has_data() and multi is None and fed == self.size:
                    self.valid_bytes = fed
                    self.commands = seen
                    return
                break
        # Something is wrong after unit number ``good``: find out exactly (raises for
        # corruption), and return the intact units the fast path did not reach.
        exact = AofReader(self.f, self.size)
        self.f.seek(0)
        tail: list[list[bytes]] = []
        for i, (cmds, _end) in enumerate(exact.transactions()):
            if i >= good:
                tail.extend(cmds)
        self.valid_bytes = exact.valid_bytes
        self.truncated_bytes = exact.truncated_bytes
        self.commands = exact.commands
        if tail:
            yield tail, self.valid_bytes

    def transactions(self) -> Iterator[tuple[list[list[bytes]], int]]:
        reader = hiredis.Reader()
        fed = 0
        multi: list[list[bytes]] | None = None
        multi_start = 0
        last_end = 0  # offset after the last complete command
        while True:
            chunk = self.f.read(READ_CHUNK_BYTES)
            if chunk:
                reader.feed(chunk)
                fed += len(chunk)
            while True:
                try:
                    cmd = reader.gets()
                except hiredis.ProtocolError:
                    self._fail_or_truncate(last_end, "not a RESP command")
                    self._finish(multi, multi_start, last_end)
                    return
                if cmd is False:
                    break
                if not _is_command(cmd):
                    self._fail_or_truncate(last_end, "not a command (array of bulk strings)")
                    self._finish(multi, multi_start, last_end)
                    return
                end = last_end + _encoded_len(cmd)
                self.commands += 1
                self._last_cmd = cmd
                name = cmd[0].lower()
                if name == b"multi":
                    if multi is not None:
                        raise AofFormatError("MULTI inside MULTI", last_end)
                    multi, multi_start = [], last_end
                elif name == b"exec":
                    if multi is None:
                        raise AofFormatError("EXEC without MULTI", last_end)
                    yield multi, end
                    multi = None
                elif multi is not None:
                    if len(multi) >= MULTI_COMMANDS_MAX:
                        raise AofFormatError("MULTI without EXEC", multi_start)
                    multi.append(cmd)
                else:
                    yield [cmd], end
                last_end = end
                if multi is None:
                    self.valid_bytes = end
            if not chunk:
                break
        if reader.has_data() or last_end != self.size:
            self._fail_or_truncate(last_end, "unexpected end of file")
        self._finish(multi, multi_start, last_end)

    def _finish(self, multi: list[list[bytes]] | None, multi_start: int, last_end: int) -> None:
        if multi is not None:  # a transaction cut by the crash: dropped whole
            self.valid_bytes = multi_start
        else:
            self.valid_bytes = last_end
        self.truncated_bytes = self.size - self.valid_bytes

    def _fail_or_truncate(self, offset: int, what: str) -> None:
        """At ``offset`` the commands stop: a cut last write, or corruption (raises)."""
        if self._last_cmd is not None:
            enc = encode_command(self._last_cmd)
            self.f.seek(offset - len(enc))
            if self.f.read(len(enc)) != enc:
                raise AofFormatError("a command is not in canonical RESP form", offset)
        self.f.seek(offset)
        rest = self.f.read()
        if rest.strip(b"\x00") and _later_command(rest):
            raise AofFormatError(f"{what}, and commands follow", offset)
        if rest.strip(b"\x00") and not _prefix_of_command(rest.rstrip(b"\x00")):
            raise AofFormatError(what, offset)


class _Anomaly(Exception):
    """The fast path met something it does not handle; the exact path takes over."""


def _encoded_len(cmd: list[bytes]) -> int:
    """Bytes of ``cmd`` encoded as the AOF writes it (``aof.encode_command``)."""
    n = 3 + len(str(len(cmd)))
    for a in cmd:
        k = len(a)
        n += k + 5 + len(str(k))
    return n


def _is_command(cmd: object) -> bool:
    return cmd.__class__ is list and bool(cmd) and all(a.__class__ is bytes for a in cmd)


def _later_command(rest: bytes) -> bool:
    """Whether a complete command starts somewhere after the first byte of ``rest``."""
    pos = 0
    for _ in range(RESYNC_PROBES_MAX):
        pos = rest.find(b"\r\n*", pos + 1)
        if pos < 0:
            return False
        r = hiredis.Reader()
        r.feed(rest[pos + 2 :])
        try:
            if _is_command(r.gets()):
                return True
        except hiredis.ProtocolError:
            continue
    return False


def _prefix_of_command(rest: bytes) -> bool:
    """Whether ``rest`` could be the start of one command cut short."""
    r = hiredis.Reader()
    r.feed(rest)
    try:
        return r.gets() is False and rest[:1] == b"*"
    except hiredis.ProtocolError:
        return False


def read_all(f: BinaryIO, size: int) -> tuple[list[list[list[bytes]]], AofReader]:
    """Every transaction of a file at once (tests and small files)."""
    reader = AofReader(f, size)
    out = [cmds for cmds, _ in reader.transactions()]
    return out, reader
