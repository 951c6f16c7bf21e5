"""Writing files into an output folder: never outside it, never half-written.

- `inside(root, *parts)`: the path ``root/parts...`` resolved, or a `WriteError` when it leaves ``root``
  (a ``..`` part, an absolute part, a subfolder that is a symlink pointing out of the folder).
- `output_folder(path)`: create a folder (and its parents), remove the temporary files that killed writers
  left in it, and return it resolved.
- `write_atomic(path, write)`: ``write(fh)`` fills a temporary file that `tempfile` creates in the target's
  folder (``O_EXCL``: it never opens an existing file or follows a planted symlink), then the temporary file
  is renamed over ``path`` (a symlink at ``path`` is replaced, its target is not written). On any failure the
  temporary file is removed and the previous ``path``, if any, is left as it was.
- `all_or_nothing()`: the `write_atomic` calls inside the block are renamed into place together when it
  ends without an error; on an error none is, and the folders `output_folder` created inside it are
  removed again when they are empty. (Only a rename failing half-way through that final step, within one
  file system, would leave the earlier files of the block in place.)

Every `OSError` (a read-only folder, a full disk, a name too long) becomes one `WriteError` naming the file
and the cause. Temporary files are named ``.NAME.PID.XXXXXXXX.facerep-part``; `output_folder` removes those
whose process is no longer running. The data is not flushed to the disk (``fsync``): the guarantees hold
for a process that fails or is killed, not for a power loss.
"""

from __future__ import annotations

import contextvars
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from facerep.common.errors import WriteError

#: Suffix of the temporary files `write_atomic` creates.
TEMP_SUFFIX = ".facerep-part"
_TEMP_NAME = re.compile(r"^\..*\.(\d+)\.[A-Za-z0-9_]+" + re.escape(TEMP_SUFFIX) + "$")
_NAME_IN_TEMP = 80  # characters of the target's name kept in a temporary file's name


class _Pending:
    """What an `all_or_nothing` block has staged: (temporary file, target) pairs and created folders."""

    def __init__(self) -> None:
        self.files: list[tuple[Path, Path]] = []
        self.folders: list[Path] = []


_PENDING: contextvars.ContextVar[_Pending | None] = contextvars.ContextVar("facerep_pending", default=None)


def describe(exc: OSError) -> str:
    """The cause of an `OSError` in words ("No space left on device"), without the path it names."""
    return exc.strerror or str(exc) or type(exc).__name__


def inside(root: str | Path, *parts: str | Path) -> Path:
    """``root / parts...`` with ``root`` and the folders above the last part resolved (symlinks followed),
    or a `WriteError` when that is not strictly inside ``root`` resolved: a name such as ``..``, ``../x``,
    ``/etc/x`` or a subfolder that is a symlink out of ``root`` cannot choose where to write. The last part
    is kept as it is: a symlink there is replaced by `write_atomic`, not written through."""
    base = Path(root).expanduser().resolve()
    joined = base.joinpath(*parts)
    name = joined.name
    target = joined.parent.resolve() / name if name not in ("", ".", "..") else joined.resolve()
    if name in ("", ".", "..") or target == base or not target.is_relative_to(base):
        shown = Path(root).joinpath(*parts)
        raise WriteError(f"{shown}: would be written outside the output folder {base}; refusing")
    return target


def output_folder(path: str | Path) -> Path:
    """Create the folder ``path`` (with its parents) when missing, remove stale temporary files in it and
    return it resolved. Inside `all_or_nothing`, folders created here are removed again (when empty) if the
    block fails."""
    folder = Path(path).expanduser()
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise WriteError(f"{folder}: cannot create the output folder (a file has that name)") from exc
    except OSError as exc:
        raise WriteError(f"{folder}: cannot create the output folder ({describe(exc)})") from exc
    pending = _PENDING.get()
    if pending is not None:
        pending.folders.extend(reversed(missing))  # outermost first
    remove_stale_temps(folder)
    return folder.resolve()


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Remove the temporary files of `write_atomic` in ``folder`` whose writing process is gone (killed,
    crashed); those of running processes (this one included) are kept. Returns the removed paths."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or _running(int(match.group(1))):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone meanwhile, or not ours to remove: leave it
            continue
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or not a valid pid to ask about: not ours to judge
    return True


def _make_temp(folder: Path, name: str) -> tuple[int, str]:
    """A new, exclusively created temporary file in ``folder`` -> (descriptor, path)."""
    prefix = f".{name[:_NAME_IN_TEMP]}.{os.getpid()}."
    return tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=folder)


def _temp_file(fd: int) -> BinaryIO:
    """The temporary file's descriptor as a binary file object (what writers write to)."""
    return os.fdopen(fd, "wb")


def _file_mode() -> int:
    """Permissions of an ordinary new file: 0o666 less the process's umask (`mkstemp` makes 0o600)."""
    try:  # Linux: read it without changing it
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _unlink_quietly(path: Path) -> None:
    with suppress(OSError):
        os.unlink(path)


def write_atomic(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` through a temporary file in its folder (see the module docstring); returns ``path``.

    ``write(fh)`` receives the binary file object. Inside `all_or_nothing` the rename waits for the block's
    end. An `OSError` becomes a `WriteError` naming ``path``; any other error propagates, after the
    temporary file is removed.
    """
    path = Path(path)
    try:
        fd, name = _make_temp(path.parent, path.name)
    except OSError as exc:
        raise WriteError(f"{path}: cannot write ({describe(exc)})") from exc
    tmp = Path(name)
    try:
        with _temp_file(fd) as fh:
            write(fh)
        os.chmod(tmp, _file_mode())
        pending = _PENDING.get()
        if pending is None:
            os.replace(tmp, path)
        else:
            pending.files.append((tmp, path))
    except OSError as exc:
        _unlink_quietly(tmp)
        raise WriteError(f"{path}: cannot write ({describe(exc)})") from exc
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    """`write_atomic` of UTF-8 text."""
    data = text.encode("utf-8")
    return write_atomic(path, lambda fh: fh.write(data))


@contextmanager
def all_or_nothing() -> Iterator[None]:
    """Stage every `write_atomic` of the block and rename them into place at its end, or none on an error
    (nested blocks join the outermost one). Returns nothing; use as ``with all_or_nothing(): ...``."""
    if _PENDING.get() is not None:
        yield
        return
    pending = _Pending()
    token = _PENDING.set(pending)
    try:
        yield
    except BaseException:
        _abandon(pending, 0)
        raise
    finally:
        _PENDING.reset(token)
    for done, (tmp, path) in enumerate(pending.files):
        try:
            os.replace(tmp, path)
        except OSError as exc:
            _abandon(pending, done)
            raise WriteError(f"{path}: cannot write ({describe(exc)})") from exc


def _abandon(pending: _Pending, start: int) -> None:
    """Remove the staged temporary files from index ``start`` on, then the created folders left empty."""
    for tmp, _ in pending.files[start:]:
        _unlink_quietly(tmp)
    for folder in reversed(pending.folders):  # innermost first; a folder that holds files stays
        with suppress(OSError):
            folder.rmdir()
