"""Loaded at start-up by an ackdb process whose PYTHONPATH begins with this directory
(``procs.Node(fsync_log=...)``): records, for every successful ``os.fsync`` /
``os.fdatasync`` of a regular file, the file's identity and its size *before* the call, to
the file named by ``ACKDB_FSYNC_LOG``. That size is a lower bound of what the call made
durable, so ``oracle.power_loss()`` can cut every file back to what a power failure
would have kept. Never changes what the calls do; a logging error is ignored.
"""

import os
import stat

_path = os.environ.get("ACKDB_FSYNC_LOG")
if _path:
    _log_fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _wrap(real):  # type: ignore[no-untyped-def]
        def synced(fd):  # type: ignore[no-untyped-def]
            try:
                st = os.fstat(fd)
            except OSError:
                st = None
            real(fd)
            if st is not None and stat.S_ISREG(st.st_mode):
                try:
                    os.write(_log_fd, b"%d %d %d\n" % (st.st_dev, st.st_ino, st.st_size))
                except OSError:
                    pass

        return synced

    os.fsync = _wrap(os.fsync)
    if hasattr(os, "fdatasync"):
        os.fdatasync = _wrap(os.fdatasync)
