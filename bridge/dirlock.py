"""An exclusive lock on a state directory (the producer's spool, the bridge's checkpoint): one process each."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class DirectoryError(Exception):
    """The directory cannot be created or opened."""


class DirectoryLockedError(DirectoryError):
    """Another process holds the directory."""


class DirectoryLock:
    """`flock` on `<directory>/lock`, which names the holder's pid; released by `release()` or by
    the process ending (a SIGKILL included, so a stale lock never blocks a restart)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None

    def acquire(self) -> None:
        """Create the directory and lock it; raises `DirectoryLockedError` naming the holder's pid,
        or `DirectoryError`."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DirectoryError(f"{self.directory}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            holder = ""
            with contextlib.suppress(OSError):
                holder = (self.directory / "lock").read_text().strip()
            raise DirectoryLockedError(
                f"{self.directory} is in use by another process"
                + (f" (pid {holder})" if holder else "")
            ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def acquire_as(
        self,
        what: str,
        owner: str,
        setting: str,
        error: type[Exception],
        locked_error: type[Exception],
    ) -> None:
        """`acquire()` for a caller with its own error types: `locked_error` when another process
        holds `what` (telling each `owner` to use its own `setting`), `error` when it is unusable."""
        try:
            self.acquire()
        except DirectoryLockedError as exc:
            raise locked_error(f"{what} {exc}; give each {owner} its own {setting}") from exc
        except DirectoryError as exc:
            raise error(f"{what} {exc}") from exc

    def release(self) -> None:
        """Unlock (idempotent)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
