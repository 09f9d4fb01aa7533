"""The AOF manifest: which files make up the append-only file, in which order.

Owns: the text format (the same lines as Redis 7's multi-part AOF manifest,
``file <name> seq <n> type <b|h|i>``), its validation, and the names of new files. The
manifest is the single point of truth: a file not listed is not part of the AOF, and a
new manifest is installed atomically (``files.atomic_write``), which is what makes a
rewrite's switch-over atomic.

Types: ``b`` the base (a snapshot, ``.base.ackdb``, or RESP commands, ``.base.aof``), at
most one and always first; ``i`` incremental files of RESP commands, loaded in sequence
order; ``h`` history, files replaced by a rewrite and waiting to be deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The longest manifest ackdb will read (bytes): a few lines per file, never this many.
MANIFEST_MAX_BYTES = 1 << 20


class ManifestError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class AofFile:
    name: str
    seq: int
    kind: str  # "b", "i" or "h"


@dataclass(slots=True)
class Manifest:
    base: AofFile | None = None
    incrs: list[AofFile] = field(default_factory=list)
    history: list[AofFile] = field(default_factory=list)

    @property
    def files(self) -> list[AofFile]:
        """The files to load, in order."""
        return ([self.base] if self.base else []) + self.incrs

    def next_seq(self, kind: str) -> int:
        """The sequence number for a new base (``b``) or incremental (``i``) file."""
        part = ".base." if kind == "b" else ".incr."
        return max((f.seq for f in self.history + self.files if part in f.name), default=0) + 1

    def dump(self) -> str:
        lines = [f"file {f.name} seq {f.seq} type {f.kind}\n" for f in self.history]
        lines += [f"file {f.name} seq {f.seq} type {f.kind}\n" for f in self.files]
        return "".join(lines)


def install_base(m: Manifest, name: str, first_incr: str) -> list[AofFile]:
    """A rewrite finished: the base ``name`` holds the dataset as of the switch to the
    incremental file ``first_incr``. The older base and incremental files become history
    (deleted once the manifest is on disk); returns them."""
    first_seq = next((f.seq for f in m.incrs if f.name == first_incr), None)
    if first_seq is None:
        raise ValueError(f"{first_incr} is not in the manifest")
    keep = [f for f in m.incrs if f.seq >= first_seq]
    dropped = ([m.base] if m.base else []) + [f for f in m.incrs if f not in keep]
    m.base = AofFile(name, int(name.split(".")[-3]), "b")
    m.incrs = keep
    m.history = [AofFile(f.name, f.seq, "h") for f in dropped] + m.history
    return dropped


def base_name(prefix: str, seq: int, snapshot: bool) -> str:
    return f"{prefix}.{seq}.base.{'ackdb' if snapshot else 'aof'}"


def incr_name(prefix: str, seq: int) -> str:
    return f"{prefix}.{seq}.incr.aof"


def parse(text: str) -> Manifest:
    """A manifest from its text; ManifestError names the bad line."""
    m = Manifest()
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        words = line.split()
        if len(words) % 2 or len(words) < 6:
            raise ManifestError(f"invalid manifest line {lineno}: {line!r}")
        fields = dict(zip(words[0::2], words[1::2], strict=True))
        try:
            name, seq, kind = fields["file"], int(fields["seq"]), fields["type"]
        except (KeyError, ValueError):
            raise ManifestError(f"invalid manifest line {lineno}: {line!r}") from None
        if "/" in name or name in seen or seq < 1 or kind not in ("b", "i", "h"):
            raise ManifestError(f"invalid manifest line {lineno}: {line!r}")
        seen.add(name)
        f = AofFile(name, seq, kind)
        if kind == "b":
            if m.base is not None:
                raise ManifestError(f"more than one base file (line {lineno})")
            m.base = f
        elif kind == "i":
            m.incrs.append(f)
        else:
            m.history.append(f)
    m.incrs.sort(key=lambda f: f.seq)
    return m
