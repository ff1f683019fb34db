"""Working arrays too large for memory, on memory-mapped temporary files.

Embeddings of a million images (512 to 2,048 float32 features each: 2.6 to 10 GB) and
k-center's centred copy of them would each take that much memory. Above
``IN_MEMORY_BYTES`` they live in an unnamed temporary file in the job's folder instead,
mapped into memory: the page cache keeps what fits, the job's own memory stays bounded
whatever the data set's size, and the system removes the file once it is unmapped, even
after a crash, so no scratch file is ever left beside the outputs.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import numpy as np

from svp.errors import OutputError

# Arrays up to this size stay in memory, where they are fastest and a million-image run's
# would not fit anyway.
IN_MEMORY_BYTES = 1 << 30


def scratch_array(shape: tuple[int, ...], dtype, folder: str | Path | None) -> np.ndarray:
    """A writable, uninitialised array of ``shape``: in memory up to ``IN_MEMORY_BYTES`` or
    without a ``folder``; above it, memory-mapped on an unnamed temporary file in ``folder``."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if folder is None or size <= IN_MEMORY_BYTES:
        return np.empty(shape, dtype=dtype)
    try:
        with tempfile.TemporaryFile(dir=folder) as file:  # unlinked at once; the mapping keeps it until unmapped
            # Reserved now, so that a disk too small is an error here, not a SIGBUS at some later write;
            # a file system that cannot reserve gets a sparse file.
            try:
                os.posix_fallocate(file.fileno(), 0, size)
            except OSError as error:
                if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                file.truncate(size)
            return np.memmap(file, dtype=dtype, mode="r+", shape=shape)
    except OSError as error:
        raise OutputError(
            f"cannot make a {size / 2**30:.1f} GiB scratch file in {folder} for an array too large for memory "
            f"({error.strerror or error}): free space there, or choose another output folder"
        ) from None
