"""Read the files the stages hand each other (subsets, scores, ranks, run metrics, the
report's tables), and refuse any that cannot be right, naming the file, an offending row
and how to remake it.

A stage can be run by hand on any file, and a file can be cut short, edited or written
by other code: what would otherwise train or select silently on garbage (a negative
index picks the last example; a NaN score sorts anywhere) is refused here, before the
stage does any work. Rows are counted from 0, as pandas shows them.

Only pyarrow and NumPy are imported at module level: a training job reads its subset
here and starts faster without pandas.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from svp.errors import StageInputError

REMAKE = {
    "subset": "rerun `svp select` (the select_subset rule) to remake it",
    "pool": "rerun the round that wrote it (`svp active next`, the label_next_batch rule; round 0: `svp active start`)",
    "scores": "rerun `svp score` (the score_examples rule) to remake it",
    "ranks": "rerun `svp rank` (the rank_examples rule) to remake it",
    "summary": "rerun `svp summarize` (the summarize rule) to remake it",
    "runs": "rerun `svp report runs` (the tabulate_runs rule) to remake it",
    "subsets table": "rerun `svp report subsets` (the tabulate_subsets rule) to remake it",
}
# A ranks file's column of one proxy run's own ranks: rank_seed<k>, or rank_<file name> for
# scores that carry no seed (computed by other tools).
RUN_RANK_PREFIX = "rank_"
# The columns each CSV table must have for the commands that read it.
TABLE_COLUMNS = {
    "summary": ("target", "selection", "proxy", "metric", "fraction", "runs", "error_mean", "error_std", "proxy_seconds",
                "scoring_seconds", "target_seconds", "total_seconds", "speedup"),
    "runs": ("target", "selection", "fraction", "seed", "test_error", "total_seconds"),
    "subsets table": ("subset", "fraction"),
}


def read_columns(path: str | Path, columns: list[str], kind: str, optional: tuple[str, ...] = ()) -> pa.Table:
    """The ``columns`` (and those of ``optional`` it has) of the parquet file ``path``, a ``kind`` file."""
    names = read_schema(path, kind).names
    missing = [column for column in columns if column not in names]
    if missing:
        raise StageInputError(
            f"{path}: no column {', '.join(map(repr, missing))}; is it a {kind} file written by svp? {REMAKE[kind]}"
        )
    try:
        return pq.read_table(path, columns=[*columns, *(c for c in optional if c in names)])
    except (pa.ArrowException, OSError) as error:
        raise _unreadable(path, kind, error) from None


def read_schema(path: str | Path, kind: str) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except (pa.ArrowException, OSError) as error:
        raise _unreadable(path, kind, error) from None


def _unreadable(path: str | Path, kind: str, error: Exception) -> StageInputError:
    """What to say about a ``kind`` file pyarrow could not read."""
    if isinstance(error, FileNotFoundError):
        problem = "no such file"
    elif Path(path).is_dir():
        problem = "a folder, not a parquet file"
    else:
        problem = f"not a readable parquet file ({error})"
    return StageInputError(f"{path}: {problem}; {REMAKE[kind]}")


def whole_numbers(path: str | Path, table: pa.Table, column: str, kind: str) -> np.ndarray:
    """``column`` as int64, refused if a value is missing, NaN or not a whole number."""
    values = table.column(column)
    if values.null_count:
        row = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
        raise StageInputError(f"{path}, row {row}: {column} is missing (null or NaN); {REMAKE[kind]}")
    numbers = values.to_numpy(zero_copy_only=False)
    if pa.types.is_integer(values.type):
        return numbers.astype(np.int64)
    if not pa.types.is_floating(values.type):
        raise StageInputError(f"{path}: column {column!r} holds {values.type} values, not whole numbers; {REMAKE[kind]}")
    not_whole = ~np.isfinite(numbers) | (numbers != np.round(numbers))
    if not_whole.any():
        row = int(np.flatnonzero(not_whole)[0])
        raise StageInputError(f"{path}, row {row}: {column} {numbers[row]} is not a whole number; {REMAKE[kind]}")
    # Whole numbers stored as floats: written by other code, which may have lost precision on the way.
    raise StageInputError(
        f"{path}: column {column!r} holds floating-point numbers ({values.type}), not integers (svp writes int64); {REMAKE[kind]}"
    )


def _first_repeat(values: np.ndarray) -> tuple[int, int] | None:
    """(row, earlier row) of the first value that appears twice, or None."""
    _, first_rows = np.unique(values, return_index=True)
    if len(first_rows) == len(values):
        return None
    repeated = np.ones(len(values), dtype=bool)
    repeated[first_rows] = False
    row = int(np.flatnonzero(repeated)[0])
    return row, int(np.flatnonzero(values[:row] == values[row])[0])


def subset_index(path: str | Path, n_examples: int, allow_empty: bool = False, kind: str = "subset") -> np.ndarray:
    """The example indices of a subset file: whole numbers in 0..n_examples-1, each once;
    at least one unless ``allow_empty`` (the report describes an empty subset; training refuses it).
    ``kind``: what the file is, for the hint on remaking it (an active-learning ``pool`` is a subset too)."""
    index = whole_numbers(path, read_columns(path, ["index"], kind), "index", kind)
    if index.size == 0 and not allow_empty:
        raise StageInputError(f"{path}: the subset holds no examples; a subset needs at least one; {REMAKE[kind]}")
    outside = (index < 0) | (index >= n_examples)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise StageInputError(
            f"{path}, row {row}: index {index[row]} is outside 0..{n_examples - 1}, the training set's examples; "
            f"was the subset selected from other data? {REMAKE[kind]}"
        )
    repeat = _first_repeat(index)
    if repeat is not None:
        row, first = repeat
        raise StageInputError(
            f"{path}, row {row}: index {index[row]} is listed again (first at row {first}); "
            f"a subset lists each example once; {REMAKE[kind]}"
        )
    return index


def _one_row_per_example(path: str | Path, table: pa.Table, kind: str, n_examples: int | None) -> np.ndarray:
    """The index column of a file with one row per training example, in index order: 0, 1, 2, ..."""
    index = whole_numbers(path, table, "index", kind)
    if index.size == 0:
        raise StageInputError(f"{path}: no rows; {REMAKE[kind]}")
    repeat = _first_repeat(index)
    if repeat is not None:
        row, first = repeat
        raise StageInputError(
            f"{path}, row {row}: index {index[row]} appears again (first at row {first}); "
            f"a {kind} file holds each training example once; {REMAKE[kind]}"
        )
    out_of_order = np.flatnonzero(index != np.arange(len(index)))
    if out_of_order.size:
        row = int(out_of_order[0])
        raise StageInputError(
            f"{path}, row {row}: index {index[row]}, expected {row}: a {kind} file holds one row per training "
            f"example, in index order; {REMAKE[kind]}"
        )
    if n_examples is not None and len(index) != n_examples:
        raise StageInputError(
            f"{path}: {len(index):,} rows, but the training set has {n_examples:,} examples (cut short, or made "
            f"from other data?); {REMAKE[kind]}"
        )
    return index


def _finite(path: str | Path, values: np.ndarray, column: str, kind: str, why: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise StageInputError(
            f"{path}, row {row}: {column} is {values[row]} ({bad.sum():,} of {len(values):,} rows not finite); {why}"
        )


def _labels(path: str | Path, table: pa.Table, kind: str, expected: np.ndarray | None) -> np.ndarray:
    labels = whole_numbers(path, table, "label", kind)
    if (labels < 0).any():
        row = int(np.flatnonzero(labels < 0)[0])
        raise StageInputError(f"{path}, row {row}: label {labels[row]} is negative; {REMAKE[kind]}")
    if expected is not None and not np.array_equal(labels, expected):
        row = int(np.flatnonzero(labels != expected)[0])
        raise StageInputError(
            f"{path}, row {row}: label {labels[row]}, but the training data's is {expected[row]}; "
            f"was it made from other data? {REMAKE[kind]}"
        )
    return labels


def read_scores(path: str | Path, metrics: tuple[str, ...] = (), with_correct: bool = False) -> dict[str, np.ndarray]:
    """A score file's ``index``, ``label``, the ``metrics`` asked for (finite floats) and,
    with ``with_correct``, ``correct`` (bool): one row per training example, in index order.

    Any parquet with these columns will do: svp's own, or one written by other code. Its
    rows may come in any order when ``index`` holds each of 0..N-1 once.
    """
    columns = ["index", "label", *metrics, *(["correct"] if with_correct else [])]
    names = read_schema(path, "scores").names
    missing = [column for column in columns if column not in names]
    if missing:
        hint = (
            " (a DataFrame's index is not stored as a column: write it with reset_index() first)"
            if "index" in missing else ""
        )
        raise StageInputError(
            f"{path}: no column {', '.join(map(repr, missing))}{hint}. A score file needs the columns "
            f"{', '.join(columns)}: one row per training example, its index 0..N-1, its label (class number)"
            f"{' and its uncertainty (higher = more uncertain)' if metrics else ''}; this file has "
            f"{', '.join(names) or 'no columns'}. Write such a file, or {REMAKE['scores']}"
        )
    table = read_columns(path, columns, "scores")
    index = whole_numbers(path, table, "index", "scores")
    if index.size and not np.array_equal(index, np.arange(len(index))) and np.array_equal(np.sort(index), np.arange(len(index))):
        table = table.take(np.argsort(index))  # rows of another tool's file, in any order
    result = {"index": _one_row_per_example(path, table, "scores", None), "label": _labels(path, table, "scores", None)}
    for metric in metrics:
        kind = table.column(metric).type
        if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
            raise StageInputError(f"{path}: column {metric!r} holds {kind} values, not numbers; {REMAKE['scores']}")
        values = table.column(metric).to_numpy(zero_copy_only=False).astype(np.float64)
        _finite(
            path, values, metric, "scores",
            "the proxy's outputs were not finite numbers: did its training diverge (see its metrics.json)? "
            "Retrain it, e.g. with a lower learning rate, and score again",
        )
        result[metric] = values
    if with_correct:
        correct = table.column("correct")
        if not pa.types.is_boolean(correct.type) or correct.null_count:
            raise StageInputError(f"{path}: column 'correct' must hold true/false for every row; {REMAKE['scores']}")
        result["correct"] = correct.to_numpy(zero_copy_only=False)
    return result


def read_ranks(path: str | Path, labels: np.ndarray | None = None) -> "pd.DataFrame":
    """A ranks file, checked: one row per training example in index order (as many as
    ``labels``, and with their labels, when given), ranks a permutation of 0..N-1 in
    ``rank`` and every ``rank_<run>`` (``rank_seed<k>``), finite ``score_mean`` and ``correct_mean`` in [0, 1]."""
    names = read_schema(path, "ranks").names
    seeds = tuple(name for name in names if name.startswith(RUN_RANK_PREFIX))
    table = read_columns(path, ["index", "label", "rank"], "ranks", optional=("score_mean", "correct_mean", *seeds))
    index = _one_row_per_example(path, table, "ranks", None if labels is None else len(labels))
    _labels(path, table, "ranks", labels)
    for column in ("rank", *seeds):
        ranks = whole_numbers(path, table, column, "ranks")
        if not np.array_equal(np.sort(ranks), index):
            repeat = _first_repeat(ranks)
            where = f", row {repeat[0]}: {column} {ranks[repeat[0]]} appears again; it" if repeat else f": column {column!r}"
            raise StageInputError(
                f"{path}{where} must hold 0..{len(index) - 1}, each once (cut short or edited?); {REMAKE['ranks']}"
            )
    for column in ("score_mean", "correct_mean"):
        if column in table.column_names:
            values = table.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
            _finite(path, values, column, "ranks", f"the scores it was ranked by were not finite; {REMAKE['ranks']}")
    if "correct_mean" in table.column_names:
        values = table.column("correct_mean").to_numpy(zero_copy_only=False)
        if ((values < 0) | (values > 1)).any():
            raise StageInputError(f"{path}: correct_mean must lie in [0, 1]; {REMAKE['ranks']}")
    return table.to_pandas()


def read_table(path: str | Path, kind: str) -> "pd.DataFrame":
    """A CSV table svp wrote (``kind``: a key of ``TABLE_COLUMNS``), with at least one row and its columns."""
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise StageInputError(f"{path}: not a readable CSV table ({_first_line(error)}); {REMAKE[kind]}") from None
    missing = [column for column in TABLE_COLUMNS[kind] if column not in table]
    if missing:
        raise StageInputError(f"{path}: no column {', '.join(map(repr, missing))}; is it a {kind} written by svp? {REMAKE[kind]}")
    if table.empty:
        raise StageInputError(f"{path}: no rows; {REMAKE[kind]}")
    return table


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


# What each role's metrics.json must hold: the facts the summary and report group by, and the numbers.
RUN_FACTS = {
    "target": ("target", "selection", "fraction", "seed", "test_error", "seconds"),
    "proxy": ("proxy", "seed", "test_error", "seconds"),
    # Active learning (svp.active): a round's selector, and a target trained on a round's pool.
    "selector": ("labelling", "selector", "strategy", "run_seed", "round", "seed", "test_error", "seconds"),
    "active_target": ("target", "labelling", "strategy", "seed", "round", "budget", "test_error", "seconds"),
}
RUN_FOLDERS = {
    "target": "targets/<target>/<selection>/<fraction>/seed<s>/",
    "proxy": "proxies/<proxy>/seed<s>/",
    "selector": "active/<labelling>/seed<s>/round<r>/selector/seed<k>/ or, round 1's, active/start/seed<s>/selectors/<selector>/seed<k>/",
    "active_target": "active/<labelling>/seed<s>/round<r>/targets/<target>/",
}


def read_run_metrics(path: str | Path, *roles: str) -> dict:
    """A run's metrics.json, refused unless it is one of a run of ``roles`` ('target', 'proxy')."""
    try:
        metrics = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StageInputError(f"{path}: not a readable metrics.json ({error}); rerun the training that wrote it") from None
    where = " or ".join(f"a {role} run's metrics.json ({RUN_FOLDERS[role]}metrics.json)" for role in roles)
    if not isinstance(metrics, dict):
        raise StageInputError(f"{path}: not a run's metrics (a JSON object); expected {where}")
    role = metrics.get("role")
    if role not in roles:
        what = f"a {role} run's metrics" if isinstance(role, str) else "not the metrics of a workflow run (no role)"
        raise StageInputError(f"{path}: {what}, but here it takes {where}")
    missing = [key for key in RUN_FACTS[role] if key not in metrics]
    if missing:
        raise StageInputError(f"{path}: no {', '.join(missing)}; expected {where}, as `svp train --info` writes it")
    for key in ("fraction", "test_error", "seconds"):
        value = metrics.get(key, 0.0)
        if key in metrics and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise StageInputError(f"{path}: {key} is {value!r}, not a number; rerun the training that wrote it")
    if not math.isfinite(metrics["seconds"]) or metrics["seconds"] < 0:
        raise StageInputError(f"{path}: seconds is {metrics['seconds']!r}; rerun the training that wrote it")
    return metrics
