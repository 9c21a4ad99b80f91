"""The output policy, in one place: how every edgefn command writes a file or a folder (stdlib only).

- A regular file (or a new one) is written atomically: a temporary file beside it, then a rename, with the
  mode an ordinary `open()` would give it (the umask respected; an existing file keeps its mode).
- A special file (a device such as /dev/null, a FIFO, a terminal) is written through, never replaced; a FIFO
  that no process reads is refused instead of blocking.
- A symlink the user named is written through to its target; a symlink inside a run folder is refused.
- A folder is replaced only when `overwrite` is asked for and the folder is recognised as edgefn's own output
  of that kind; anything else already there is refused, never deleted.
- Output and input are compared by real path and by inode, so no spelling of a path overwrites an input.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from edgefn.core.errors import EdgefnError, disk_faults


def current_umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode `open()` gives a new file: 0666 less the umask."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """The mode `mkdir` gives a new folder: 0777 less the umask."""
    return 0o777 & ~current_umask()


def safe_name(text: str, fallback: str = "data") -> str:
    """A folder or file name made from user data: letters, digits and '._+=-' only, no leading dot or dash
    (so never '.', '..' or a hidden name), at most 80 characters."""
    name = re.sub(r"[^A-Za-z0-9._+=-]+", "-", text).strip("-.")
    return name[:80] or fallback


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def same_file(a: Path | str, b: Path | str) -> bool:
    """Whether two paths name one file: the same real path, or the same inode (hard links, bind mounts)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    ida, idb = _identity(Path(a)), _identity(Path(b))
    return ida is not None and ida == idb


def refuse_input_as_output(
    output: Path | str | None, inputs: Iterable[Path | str | None], option: str
) -> None:
    """Refuse an output path that names one of the command's input files, however it is spelled."""
    if output is None or str(output) == "-":
        return
    for source in inputs:
        if source is None or str(source) == "-":
            continue
        if same_file(output, source):
            raise EdgefnError(f"{option} {output} is the input file {source}; write the output elsewhere")


def is_inside(path: Path | str, folder: Path | str) -> bool:
    """Whether `path` (where it will be written, links resolved) is `folder` or anywhere under it."""
    real, root = os.path.realpath(path), os.path.realpath(folder)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def refuse_output_inside(output: Path | str | None, folder: Path | str, option: str, what: str) -> None:
    """Refuse an output path inside `folder` (a model the command reads: its files are inputs too)."""
    if output is None or str(output) == "-" or is_special(Path(output)):
        return
    if is_inside(output, folder):
        raise EdgefnError(f"{option} {output} is inside {what} {folder}; write the output elsewhere")


def refuse_symlinks(path: Path, root: Path, what: str = "run folder") -> None:
    """Refuse `path` when it, or any folder between `root` and it, is a symlink (writes inside a run must stay
    inside it)."""
    path, root = Path(path), Path(root)
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = ()
    probe = root
    for part in parts:
        probe = probe / part
        if probe.is_symlink():
            raise EdgefnError(
                f"{probe} is a symlink inside the {what} {root}; edgefn writes only real files there "
                "(remove the link)"
            )


def is_special(path: Path) -> bool:
    """Whether `path` exists and is neither a regular file nor a folder (a device, FIFO or socket)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def check_output_file(path: Path | str, option: str = "--output") -> Path:
    """Check, before any work, that a file can be written at `path`; return where it will be written: the
    path itself for a device or FIFO (also through a link, e.g. /dev/stdout), else the target of a symlink.
    A folder, a path under a file or a folder that cannot be written is refused."""
    path = Path(path)
    if is_special(path):  # a FIFO is not opened here: a probe would end its reader's stream
        return path
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    if target.is_dir():
        raise EdgefnError(f"{option} {path} is a folder; give a file path")
    check_writable(target.parent, f"{option} {path}")
    return target


def check_writable(folder: Path, named: str, choose: str = "choose another path") -> None:
    """Refuse a folder that cannot be created or written in: the nearest existing ancestor is a file, or a
    real write there fails (a mode, a read-only file system, chattr +i, also for root)."""
    probe = Path(folder)
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise EdgefnError(f"{named} is under {probe}, which is a file; {choose}")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        raise EdgefnError(f"cannot write to {probe} ({e.strerror or e}); {choose}") from None


def _open_special(target: Path, option: str) -> int:
    """Open a device or FIFO for writing without blocking; a FIFO with no reader is refused."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise EdgefnError(
                f"{option} {target} is a FIFO that no process is reading; start the reader first"
            ) from None
        raise EdgefnError(f"{option} {target}: cannot open ({e.strerror or e})") from None
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    return fd


def _make_parents(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; return the ones created, deepest first."""
    created: list[Path] = []
    probe = folder
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


@contextlib.contextmanager
def open_output(
    path: Path | str | None,
    option: str = "--output",
    binary: bool = False,
    follow_symlinks: bool = True,
) -> Iterator[IO]:
    """Yield a stream that writes `path` by the output policy; the file appears whole only if the block ends
    without an error (a regular file), or is written through (a device, FIFO, or stdout when `path` is None).

    Args:
        path: the output file, or None for standard output.
        option: how the message names the path (an option such as "--output", or "file").
        binary: yield a bytes stream instead of a UTF-8 text one.
        follow_symlinks: write through a symlink to its target; False refuses it (files inside a run).
    """
    if path is None:
        stream = sys.stdout.buffer if binary else sys.stdout
        yield stream
        stream.flush()
        return
    path = Path(path)
    if path.is_symlink() and not follow_symlinks:
        raise EdgefnError(f"{path} is a symlink; edgefn writes only real files there (remove the link)")
    target = check_output_file(path, option)
    text_args = {} if binary else {"encoding": "utf-8", "newline": ""}
    if is_special(target):
        fd = _open_special(target, option)
        with os.fdopen(fd, "wb" if binary else "w", **text_args) as f:  # type: ignore[call-overload]
            yield f
        return
    created = _make_parents(target.parent)
    mode = stat.S_IMODE(os.stat(target).st_mode) if target.exists() else file_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with (
            disk_faults(target),
            os.fdopen(fd, "wb" if binary else "w", **text_args) as f,  # type: ignore[call-overload]
        ):
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def write_text(
    path: Path | str | None, content: str, option: str = "--output", follow_symlinks: bool = True
) -> None:
    """Write `content` to `path` (None: stdout) by the output policy."""
    with open_output(path, option, follow_symlinks=follow_symlinks) as f:
        f.write(content)


def check_output_dir(
    final: Path,
    overwrite: bool = False,
    owned: Callable[[Path], bool] | None = None,
    kind: str = "output folder",
    option: str | None = None,
) -> None:
    """Refuse, before any work, a folder output that `output_dir` would refuse: a symlink, a file, an existing
    folder without `overwrite` or not recognised by `owned`, or a place that cannot be written."""
    final = Path(final)
    named = f"{option} {final}" if option else str(final)
    if final.is_symlink():
        raise EdgefnError(f"{named} is a symlink; edgefn writes only real folders there (remove the link)")
    if final.exists() or is_special(final):
        if not final.is_dir():
            raise EdgefnError(f"{named} exists and is not a folder; choose another path")
        if not overwrite:
            raise EdgefnError(f"{final} already exists (use --overwrite to replace it)")
        if owned is not None and any(final.iterdir()) and not owned(final):  # an empty folder holds nothing
            raise EdgefnError(
                f"{named} exists and is not an edgefn {kind}; edgefn replaces only its own output "
                "(choose another path)"
            )
    check_writable(final.parent, named)


@contextlib.contextmanager
def output_dir(
    final: Path,
    overwrite: bool = False,
    owned: Callable[[Path], bool] | None = None,
    kind: str = "output folder",
    option: str | None = None,
) -> Iterator[Path]:
    """Yield a temporary folder beside `final`, renamed to `final` only if the block succeeds.

    An existing `final` is replaced only with `overwrite` and only when `owned(final)` recognises it as
    edgefn's output of this kind (checked before the block's work, and again before the swap); a symlink is
    never replaced. An interrupted or failed block leaves nothing at `final` and removes the temporary folder.
    """
    final = Path(final)
    check_output_dir(final, overwrite, owned, kind, option)
    created = _make_parents(final.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    tmp.chmod(dir_mode())  # mkdtemp creates 0700
    try:
        with disk_faults(final):  # checked while the partial files are still there
            yield tmp
        check_output_dir(final, overwrite, owned, kind, option)  # nothing of the user's appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    if final.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, retired / final.name)
        os.replace(tmp, final)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(tmp, final)
