"""Parquet tables with the facts about the run that made them stored in the file's schema."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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


def read_parquet_metadata(path: str | Path) -> dict:
    """The facts stored by ``write_parquet``; {} for a file written without them (by other code)."""
    stored = (pq.read_schema(path).metadata or {}).get(METADATA_KEY)
    return json.loads(stored) if stored else {}
