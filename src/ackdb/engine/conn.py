"""What the engine needs from a client's connection, and a connection that goes nowhere.

Owns: the ``Conn`` protocol (the asyncio shell's ``ClientConnection`` implements it) and
``NullConn`` (the AOF loader's client, the primary's client, scripts' clients, the
simulators' connections, which subclass it). Kept out of engine/client.py, which the
mypyc build compiles (src/ackdb/compiled.py): interpreted classes may not subclass a
compiled one.
"""

from __future__ import annotations

from typing import Protocol


class Conn(Protocol):
    """What the core needs from a connection (the asyncio shell provides it)."""

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def buffer_size(self) -> int: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def resume_commands(self, skip_first_with: bytes | None = None) -> None:
        """Run the commands held while the client was paused or blocked; the first gets
        ``skip_first_with`` as its reply instead when given (a blocked command served)."""


class NullConn:
    """A connection that goes nowhere: the AOF loader's client, the primary's client."""

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass

    def buffer_size(self) -> int:
        return 0

    def pause_reading(self, why: str = "") -> None:
        pass

    def resume_reading(self, why: str = "") -> None:
        pass

    def resume_commands(self, skip_first_with: bytes | None = None) -> None:
        pass
