"""Atomic file output: a failure never leaves a half-written file that looks finished."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from svp.errors import OutputError

# The errors that mean the device cannot take more: the file system, or the user's quota, is full.
FULL_DEVICE = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only on success.

    The temporary file lives in the same directory so the final ``os.replace`` is an
    atomic rename on the same file system, never a copy. A full disk is reported as an
    ``OutputError`` naming ``path``, once the temporary file is gone.
    """
    final = Path(path)
    tmp = None
    try:
        _make_folder(final)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        yield tmp
        if tmp.exists():
            # mkstemp creates files readable by their owner only; give the finished
            # file the permissions any other new file would get.
            os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, final)
    except OSError as error:
        if error.errno in FULL_DEVICE:
            _remove(tmp)
            raise OutputError(
                f"{os.strerror(error.errno).lower()} while writing {final}; nothing partial was left "
                "(the temporary file was removed): free some space, or choose another output folder, and rerun"
            ) from error
        raise
    finally:
        _remove(tmp)


def _remove(tmp: Path | None) -> None:
    if tmp is not None and tmp.exists():
        tmp.unlink()


def check_writable(*paths: str | os.PathLike) -> None:
    """Refuse, before any work, output paths that cannot be written: a file in the way of
    their folder, a folder where the file should be, a folder without write permission.

    Creates the folders, as writing the outputs would; probes with a temporary file,
    which is what ``atomic_path`` will write there.
    """
    for path in paths:
        final = Path(path)
        if final.is_dir():
            raise OutputError(f"cannot write {final}: it is a folder; give a file name for this output")
        _make_folder(final)
        try:
            with tempfile.TemporaryFile(dir=final.parent):
                pass
        except PermissionError:
            raise OutputError(
                f"cannot write {final}: no permission to write in {final.parent}; "
                "choose another output folder or change its permissions"
            ) from None
        except OSError as error:
            if error.errno != errno.EROFS:
                raise
            raise OutputError(
                f"cannot write {final}: {final.parent} is on a read-only file system; choose another output folder"
            ) from None


def _make_folder(final: Path) -> None:
    """Create the folder of the output ``final``; refuse when a file stands in its way."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(
            f"cannot write {final}: {_file_in_the_way(final.parent)} is a file, not a folder; "
            "choose another output path or move that file"
        ) from None


def _file_in_the_way(folder: Path) -> Path:
    """The first part of ``folder`` that exists and is not a folder."""
    for part in reversed([folder, *folder.parents]):
        if part.exists() and not part.is_dir():
            return part
    return folder


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())
