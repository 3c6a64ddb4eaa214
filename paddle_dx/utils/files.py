"""Atomic writes: a crash mid-write never leaves a half-written file under the real name.

A write goes to a temporary file (or folder) beside its target whose name starts with
``TEMP_PREFIX`` and the target's name, so the leftovers of a process killed mid-write are
recognised and removed by the next run in that folder (``remove_temp_files``); a full disk
is one line naming the file (``DiskFull``), with the target left as it was."""

import errno
import glob
import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_PREFIX = ".paddle_dx-tmp."


def temp_prefix(target_name: str) -> str:
    """The start of the name of the temporary file or folder that a write of ``target_name`` uses."""
    return f"{TEMP_PREFIX}{target_name}."


def remove_temp_files(folder: Path | str, names: Iterable[str]) -> list[Path]:
    """Remove what writes of ``names`` killed mid-way left in ``folder`` (and only that); return it.

    Call it only while no other process can be writing there (a training holding its run lock)."""
    removed = []
    for name in names:
        for path in sorted(Path(folder).glob(glob.escape(temp_prefix(name)) + "*")):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() and not path.is_symlink() else path.unlink()
            removed.append(path)
    return removed


@contextmanager
def disk_full_reported(path: Path | str, kept: str) -> Iterator[None]:
    """Turn "no space left on device" (or over quota) while writing ``path`` into one DiskFull line
    naming it and saying what was kept (``kept``, e.g. "the previous checkpoint is intact")."""
    from paddle_dx.errors import DiskFull

    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        try:
            free = f", {shutil.disk_usage(Path(path).parent).free / 2**20:.0f} MiB free"
        except OSError:
            free = ""
        raise DiskFull(f"{path}: the disk is full ({exc.strerror}{free}); {kept}") from None


@contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success fsync it and rename over ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    kept = f"the earlier {target.name} is unchanged" if target.exists() else "nothing was written"
    with disk_full_reported(target, kept):  # no room for even an empty file (inodes used up)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=temp_prefix(target.name), suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs follow the umask like any other file
    try:
        with disk_full_reported(target, kept):
            yield Path(tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync(target.parent)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _process_umask():
    """Read once at import: os.umask can only be read by setting it, which would race with threads."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _process_umask()


def umask_mode(mode: int = 0o777) -> int:
    """``mode`` as the process umask lets a new file or folder have it (mkstemp/mkdtemp give 0600/0700)."""
    return mode & ~_UMASK


def _fsync(path, flags=os.O_RDONLY):
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def staged_directory(target: Path | str, stale: Iterable[str] = ()) -> Iterator[Path]:
    """Yield an empty folder beside ``target``; when the block succeeds it takes ``target``'s
    place by renames, when it fails it is removed and ``target`` is left exactly as it was.

    For outputs made of several files (an export): written in place, a failure half-way (disk
    full, a size limit) would leave neither the old set nor the new one. Entries of the old
    folder that the new one lacks are moved over, unless named in ``stale`` (old outputs)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".new"))
    os.chmod(stage, umask_mode())  # mkdtemp makes 0700; outputs follow the umask
    try:
        yield stage
        for f in stage.rglob("*"):
            if f.is_file():
                _fsync(f)
        _swap(stage, target, set(stale))
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _swap(stage, target, stale):
    """Rename ``stage`` to ``target``; the old ``target`` is renamed aside first and back on failure."""
    if not target.exists():
        os.rename(stage, target)
        _fsync(target.parent)
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
    os.rmdir(old)
    os.rename(target, old)
    try:
        os.rename(stage, target)
    except BaseException:
        os.rename(old, target)
        raise
    _fsync(target.parent)
    for entry in old.iterdir():
        if entry.name not in stale and not (target / entry.name).exists():
            os.rename(entry, target / entry.name)
    shutil.rmtree(old, ignore_errors=True)


def write_json(path: Path | str, data: object) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_jsonable), encoding="utf-8")


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def why_not_a_file(path: Path | str) -> str | None:
    """None when ``path`` is a regular file, else why not ("file not found", "is a folder, not a
    file", "is a FIFO (named pipe), not a file", "path too long"). Opening a FIFO would block
    forever and ``Path.is_file`` raises on a path longer than the system allows, so every reader
    asks this first and says what the path really is."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "broken symbolic link" if os.path.islink(path) else "file not found"
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return f"path too long ({len(path):,} characters)"
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        return f"cannot open ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return f"is {kind}, not a file"


def check_writable(directory: Path | str) -> None:
    """Fail at start-up, not after an hour, if ``directory`` cannot be written."""
    from paddle_dx.errors import PaddleDxError

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory) as probe:  # a name of its own: two runs may probe at once
            probe.write(b"0" * 1024)
            probe.flush()
    except OSError as exc:
        raise PaddleDxError(f"output directory {directory} is not writable: {exc.strerror or exc}") from None


def check_output_file(path: Path | str, option: str = "--output") -> None:
    """Fail before any work if the file ``path`` cannot be written (a folder, a read-only or
    missing-and-uncreatable folder): a long job must not end by losing its results."""
    from paddle_dx.errors import ConfigError

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file name")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{option} {path} exists and is not a regular file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot write in {path.parent} ({exc.strerror or exc})") from None


def check_free_space(directory: Path | str, needed_bytes: int | float) -> None:
    """Fail at start-up if the disk holding ``directory`` has less room than the run will need."""
    import shutil

    from paddle_dx.errors import PaddleDxError

    free = shutil.disk_usage(directory).free
    if free < needed_bytes:
        raise PaddleDxError(
            f"output directory {directory}: only {free / 2**20:.0f} MiB free, this run needs "
            f"about {needed_bytes / 2**20:.0f} MiB (checkpoints + best model); free some space "
            f"or set Global.output_dir to another disk"
        )


def walk_files(root: Path | str, suffixes: Iterable[str] | None = None) -> list[Path]:
    """Files under ``root`` (sorted), descending into symlinked folders too, each real folder once.

    ``Path.rglob`` does not follow a symlinked folder (a dataset assembled from links to case
    folders on another disk would look empty); ``os.walk(followlinks=True)`` does, and the set of
    visited real paths keeps a link from looping forever, and a link to ``root`` or above it is not
    followed at all (it would list the folders beside ``root``: another class's images under
    this one's label).
    ``suffixes``: lower-case extensions to keep (e.g. ``(".dcm",)``); None keeps every file.
    """
    seen, found, top = set(), [], os.path.realpath(root)
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders[:] = [name for name in sorted(subfolders) if not _link_up(os.path.join(folder, name), top)]
        found += [Path(folder) / n for n in names if suffixes is None or os.path.splitext(n)[1].lower() in suffixes]
    return sorted(p for p in found if p.is_file())


def _link_up(path, top):
    """True (with a warning) for a folder link to ``top`` or one of its parents: a loop."""
    target = os.path.realpath(path)
    if not os.path.islink(path) or os.path.commonpath([top, target]) != target:
        return False
    logging.getLogger(__name__).warning("%s: a link back up to %s (a loop); not followed", path, target)
    return True
