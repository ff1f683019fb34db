"""Parquet tables with the facts about the run that made them stored in the file's schema."""

from __future__ import annotations

import json
from pathlib import Path

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


def read_parquet_metadata(path: str | Path) -> dict:
    """The facts ``write_parquet`` stored in the file; ``{}`` when it stored none (each caller
    decides what a missing fact means: most fall back on the file's path)."""
    try:
        schema = pq.read_schema(path)
    except FileNotFoundError:
        raise StageInputError(f"{path}: missing; rerun the stage that writes it") from None
    except (OSError, pa.ArrowException) as error:
        raise StageInputError(
            f"{path}: not a readable parquet file ({error}); rerun the stage that writes it"
        ) from None
    stored = (schema.metadata or {}).get(METADATA_KEY)
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
