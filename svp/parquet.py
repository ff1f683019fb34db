"""Parquet tables with the facts about the run that made them stored in the file's schema."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from svp.errors import StageInputError
from svp.io import atomic_path

METADATA_KEY = b"svp"


def write_parquet(frame: pd.DataFrame, path: str | Path, metadata: dict | None = None) -> None:
    """Write ``frame`` as parquet, with ``metadata`` (JSON) in the file's schema."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata is not None:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(metadata).encode()}
        )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


class RowGroups:
    """A parquet file written a row group at a time (what ``parquet_row_groups`` yields):
    each ``write`` adds a frame's rows, so a table larger than memory is never held whole."""

    def __init__(self, path: Path):
        self._path = path
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0
        self.metadata: dict | None = None  # set before the file closes: facts known only at the end

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._path, table.schema)
        self._writer.write_table(table)
        self.rows += len(frame)

    def abort(self) -> None:
        """Close the file unfinished (``parquet_row_groups`` then removes it)."""
        if self._writer is not None:
            self._writer.close()

    def close(self) -> None:
        if self._writer is None:
            raise ValueError(f"{self._path}: no rows were written")
        if self.metadata is not None:
            self._writer.add_key_value_metadata({METADATA_KEY: json.dumps(self.metadata).encode()})
        self._writer.close()


@contextmanager
def parquet_row_groups(path: str | Path) -> Iterator[RowGroups]:
    """Write the parquet file ``path`` a row group at a time, under a temporary name that
    becomes ``path`` only once the file is complete; the ``metadata`` set on what this
    yields is stored with it, as ``write_parquet`` stores its own."""
    with atomic_path(path) as tmp:
        groups = RowGroups(tmp)
        try:
            yield groups
        except BaseException:
            groups.abort()
            raise
        groups.close()


def read_parquet_metadata(path: str | Path) -> dict:
    """The facts ``write_parquet`` stored in the file; ``{}`` when it stored none (each caller
    decides what a missing fact means: most fall back on the file's path)."""
    try:
        # The file's key-value metadata: the schema's, and what a writer added as it closed.
        stored_metadata = pq.read_metadata(path).metadata or {}
    except FileNotFoundError:
        raise StageInputError(f"{path}: missing; rerun the stage that writes it") from None
    except (OSError, pa.ArrowException) as error:
        raise StageInputError(
            f"{path}: not a readable parquet file ({error}); rerun the stage that writes it"
        ) from None
    stored = stored_metadata.get(METADATA_KEY)
    if stored is None:
        return {}
    try:
        facts = json.loads(stored)
    except (UnicodeDecodeError, ValueError) as error:
        raise StageInputError(
            f"{path}: its svp facts are not valid JSON ({error}); rerun the stage that writes it"
        ) from None
    if not isinstance(facts, dict):
        raise StageInputError(
            f"{path}: its svp facts are {type(facts).__name__}, not a mapping; rerun the stage that writes it"
        )
    return facts
