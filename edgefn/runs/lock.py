"""The run's lock file: one writer at a time, never through a symlink; writable folders checked up front."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from edgefn.core import outputs
from edgefn.core.errors import EdgefnError
from edgefn.runs.layout import LOCK_FILE


def check_writable_dir(folder: Path, option: str | None = "--run-dir") -> None:
    """Refuse, before any work, a folder that cannot be created or written: a file on its path or no permission."""
    folder = Path(folder)
    named = f"{option or 'folder'} {folder}"
    choose = f"choose another {option}" if option else "choose another folder"
    if folder.exists() and not folder.is_dir():
        raise EdgefnError(f"{named} is a file, not a folder; {choose}")
    outputs.check_writable(folder, named, choose)


@contextlib.contextmanager
def run_lock(folder: Path, command: str) -> Iterator[None]:
    """Hold the run folder's lock file while `command` writes to it; a second writer is refused at once.

    The file is removed on release, so a folder looks as before once the command ends.
    """
    path = Path(folder) / LOCK_FILE
    try:  # never through a symlink, never onto a file that is not a plain one
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, outputs.file_mode())
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise EdgefnError(
                f"{path} is a symlink; remove it (edgefn's lock file is a plain file)"
            ) from None
        raise EdgefnError(f"cannot write to {folder} ({e.strerror or e})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise EdgefnError(f"{path} is not a plain file; remove it (edgefn's lock file is a plain file)")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another edgefn process"
        os.close(fd)
        raise EdgefnError(f"{folder} is in use ({holder}); wait for it to finish") from None
    link = first_symlink(Path(folder))
    if link is not None:
        os.unlink(path)
        os.close(fd)
        raise EdgefnError(
            f"{link} is a symlink inside the run folder {folder}; edgefn writes only real files there (remove the link)"
        )
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}: edgefn {command}".encode())
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:  # still ours (not a newer folder's lock)
                os.unlink(path)
        os.close(fd)


def first_symlink(folder: Path) -> Path | None:
    """The first symlink inside `folder` (the folder itself may be one), or None."""
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            if os.path.islink(os.path.join(root, name)):
                return Path(root) / name
    return None
