"""Where results are written: checked before any work, built beside the target, renamed in.

Every sub-command that writes a file goes through here so that the same mistakes (a missing
or unwritable folder, a parent that is a file) give the same one-line error before anything
is computed or printed, and so that an interrupted run leaves no partial file. Partial
files are named ``.<name>.partial-<pid>``; one left by a run that was killed outright
(SIGKILL, power loss) is removed by the next run once its process is gone.
"""

from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from simlink.errors import SimlinkError

_PARTIAL = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)(?P<tail>\.wal|\.tmp)?$")


def reason(exc: BaseException) -> str:
    """The system's reason for a failed write, without the library's own wording (or paths)."""
    text = f"{getattr(exc, 'strerror', None) or ''} {exc}"
    for known in ("Permission denied", "No space left on device", "Read-only file system", "Not a directory",
                  "Operation not permitted", "Is a directory"):
        if known in text:
            return known
    return "input/output error"


def check_folder(folder: Path, what: str = "output folder") -> None:
    """The folder exists, is a folder, and this user may create files in it."""
    folder = folder if str(folder) else Path(".")
    if not folder.exists():
        if any(p.exists() and not p.is_dir() for p in folder.parents):
            raise SimlinkError(f"{what} is inside a file, not a folder", path=folder)
        raise SimlinkError(f"{what} does not exist", path=folder)
    if not folder.is_dir():
        raise SimlinkError(f"{what} is a file, not a folder", path=folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SimlinkError(f"{what} is not writable", path=folder)


def check_creatable_folder(folder: Path, what: str = "output folder") -> None:
    """``folder`` is a folder or can be made one (missing parents are created too)."""
    folder = Path(folder)
    if folder.exists():
        check_folder(folder, what)
        return
    existing = next((p for p in folder.parents if p.exists()), Path("."))
    if not existing.is_dir():
        raise SimlinkError(f"{what} is inside a file, not a folder", path=folder)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SimlinkError(f"{what} cannot be created: its parent folder is not writable", path=folder)


def check_target(path: Path, *, folder_ok: bool = False) -> None:
    """``path`` can be written: its folder is usable and it is not a folder itself."""
    path = Path(path)
    if path.is_dir() and not folder_ok:
        raise SimlinkError("output is a folder, not a file", path=path)
    if path.exists() and not path.is_dir() and folder_ok:
        raise SimlinkError("output is a file, not a folder", path=path)
    check_folder(path.parent)


def partial_path(path: Path) -> Path:
    """The hidden file a result is built in before it is renamed into place."""
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_partials(path: Path) -> list[Path]:
    """Remove partial files of ``path`` left by runs whose process no longer exists."""
    path = Path(path)
    removed = []
    folder = path.parent if str(path.parent) else Path(".")
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        found = _PARTIAL.match(entry.name)
        if not found or found["name"] != path.name or _alive(int(found["pid"])):
            continue
        remove(entry)
        removed.append(entry)
    return removed


def remove(path: Path) -> None:
    """Remove a file or folder if it is there (cleanup must never raise a second error)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


@contextmanager
def writing(path: Path) -> Iterator[Path]:
    """Yield a partial path to write; rename it to ``path`` on success, remove it otherwise.

    OS errors while writing (disk full, permission) become one line naming ``path``.
    """
    path = Path(path)
    check_target(path)
    clean_stale_partials(path)
    partial = partial_path(path)
    try:
        yield partial
        os.replace(partial, path)
    except OSError as exc:
        raise SimlinkError(f"cannot write ({reason(exc)})", path=path) from None
    finally:
        remove(partial)
        remove(partial.with_name(partial.name + ".wal"))


def write_text(path: Path, text: str) -> None:
    """Write a small text file atomically."""
    with writing(path) as partial:
        partial.write_text(text, encoding="utf-8")
