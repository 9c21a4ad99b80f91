"""User errors (one line, exit 2) and environment faults such as a full disk (one line, exit 1)."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Below this many free bytes a disk counts as full: a write that failed there failed for want of space.
FULL_DISK_BYTES = 1 << 20
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_DISK_ERRNOS = (*_NO_SPACE, errno.EFBIG, errno.EIO, errno.EROFS)  # faults of the disk written to
# How libraries that do not raise OSError word a failed write when they name its cause (safetensors).
_NO_SPACE_WORDS = tuple(os.strerror(n) for n in _NO_SPACE)


class EdgefnError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class ConfigError(EdgefnError):
    """A refused config value, named by its field ("optimize: unknown level 'O9'"); the CLI names the flag.

    `related` lists the fields the detail mentions by name (the CLI names their flags there too)."""

    def __init__(self, field: str, detail: str, related: tuple[str, ...] = ()) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail
        self.related = related

    def __reduce__(self) -> tuple[type, tuple[str, str, tuple[str, ...]]]:
        """Pickled with its field (a Ray worker's refusal reaches the driver as the same error)."""
        return type(self), (self.field, self.detail, self.related)


def os_error_line(e: OSError, what: str) -> str:
    """One line for an OS fault: what failed (the file it names, else `what`), the reason and the errno."""
    where = e.filename if e.filename is not None else what
    name = errno.errorcode.get(e.errno, "") if e.errno is not None else ""
    code = f" (errno {e.errno} {name})" if e.errno is not None else ""
    line = f"{where}: {e.strerror or e}{code}"
    if e.errno in _NO_SPACE and e.filename is not None:
        line += "; free some space and run the command again"
    return line


def full_disk(folders: tuple[Path, ...]) -> Path | None:
    """The first of `folders` (or the temp folder) whose file system has no room left, else None."""
    for folder in (*folders, Path(tempfile.gettempdir())):
        probe = Path(folder)
        while not probe.exists() and probe.parent != probe:
            probe = probe.parent
        try:
            st = os.statvfs(probe)
        except OSError:
            continue
        blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail  # root may also fill the reserved blocks
        no_inodes = st.f_files > 0 and st.f_favail == 0
        if blocks * st.f_frsize < FULL_DISK_BYTES or no_inodes:
            return Path(folder)
    return None


@contextlib.contextmanager
def disk_faults(*folders: Path) -> Iterator[None]:
    """Report a library error met on a full disk as OSError(ENOSPC) naming the folder written to."""
    # C++ writers (protobuf, torch's zip writer, iostreams) and Rust ones (safetensors) raise no OSError when a
    # write fails: it surfaces as a DecodeError reading the truncated file back, or as `basic_ios::clear`.
    # Use this inside the block that removes the partial files, so the disk is still full when checked.
    try:
        yield
    except OSError as e:
        if e.filename is not None or e.errno not in _DISK_ERRNOS or not folders:
            raise
        raise OSError(e.errno, e.strerror, f"writing {folders[0]}") from e  # name where it was writing
    except EdgefnError:  # a deliberate refusal, whatever the disk holds
        raise
    except Exception as e:
        full = full_disk(folders)
        if full is None and any(word in str(e) for word in _NO_SPACE_WORDS):
            full = Path(folders[0]) if folders else Path.cwd()
        if full is None:
            raise
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"writing {full}") from e
