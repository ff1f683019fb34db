"""The subset tables of the report: what each subset holds (``svp.selection.diagnostics``
computes it), written as ``subsets.csv``, ``.md`` and ``.html``, and the warnings a run
ends with."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from svp import stage_files
from svp.io import atomic_path
from svp.plan import FULL
from svp.report import render
from svp.report.render import html_page, html_table, markdown_table
from svp.schema import format_fraction
from svp.selection.diagnostics import MIN_SHARE_RATIO, SHARE_PREFIX, class_columns, diagnose_subsets, warnings_of


def _number(value, digits: int = 2, empty: str = "") -> str:
    return empty if pd.isna(value) else f"{value:.{digits}f}"


def _summary_rows(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    header = ["subset", "fraction", "examples", "smallest share ratio (class)", "TV distance", "proxy error %",
              "proxy runs' Jaccard", "proxy disagrees with label % (subset / all)"]
    rows = []
    for row in table.itertuples():
        is_proxy = bool(row.proxy)
        if not is_proxy:
            jaccard_cell = ""
        elif row.proxy_runs < 2:
            jaccard_cell = f"n/a ({row.proxy_runs} proxy run)"
        else:
            jaccard_cell = _number(row.jaccard)
        ratio = "" if pd.isna(row.min_ratio) else f"{row.min_ratio:.2f} ({row.min_ratio_class})"
        if row.n_examples == 0:
            ratio = "empty subset"
        elif row.subset == FULL:
            ratio = ""
        error = ("NaN" if pd.isna(row.proxy_error) else f"{row.proxy_error:.2f}") if is_proxy else ""
        disagree = f"{_number(row.disagreement, 1, 'NaN')} / {_number(row.disagreement_all, 1, 'NaN')}" if is_proxy else ""
        rows.append([row.subset, "" if row.subset == FULL else format_fraction(row.fraction), f"{row.n_examples:,}",
                     ratio, _number(row.tv_distance, 3), error, jaccard_cell, disagree])
    return header, rows


def _share_rows(table: pd.DataFrame) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Header and (text, below half of the data's share) cells of the class-share table."""
    columns = class_columns(table)
    full = table.loc[table["subset"] == FULL, columns].iloc[0].to_numpy(dtype=np.float64)
    rows = []
    for _, row in table.iterrows():
        values = row[columns].to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            low = values / full < MIN_SHARE_RATIO
        label = row["subset"] if row["subset"] == FULL else f"{row['subset']} {format_fraction(row['fraction'])}"
        rows.append([(label, False)] + [(_number(v, 1), bool(flag)) for v, flag in zip(values, low)])
    return ["subset"] + [c.removeprefix(SHARE_PREFIX) for c in columns], rows


ADVICE = (
    "What to try: `selection.class_balanced: true` (every subset keeps each class's share, "
    "each class contributing its own most uncertain examples), a larger fraction, or a "
    "better proxy (more epochs, a larger model, more seeds: its test error is in the table)."
)
SUMMARY_CAPTION = (
    "Smallest share ratio: a class's share of the subset divided by its share of the training "
    f"set, for the class where it is smallest (below {MIN_SHARE_RATIO} warns). TV distance: total "
    "variation distance between the subset's and the data's class distributions (0 = same mix). "
    "Proxy error: the proxy's mean test error over its runs. Jaccard: mean overlap of the subsets "
    "single proxy runs would have chosen (two random subsets of fraction f overlap by about "
    "f/(2-f)). Disagreement: share of examples whose proxy prediction differs from the label, "
    "mean over the proxy runs, in the subset and in the whole training set."
)
SHARES_CAPTION = (
    f"Share of each class (%) in each subset and in the full training set; shares below "
    f"{MIN_SHARE_RATIO} of the data's are marked."
)
MAX_MARKDOWN_CLASSES = 30


def format_markdown(table: pd.DataFrame) -> str:
    warnings = warnings_of(table)
    parts = ["## Subsets: what each holds against the full training set"]
    if warnings:
        parts.append("**Warnings** (a subset keeps less than half of some class's share):\n\n"
                     + "\n".join(f"- {text}" for text in warnings) + f"\n\n{ADVICE}")
    else:
        parts.append(f"No subset keeps less than {MIN_SHARE_RATIO} of any class's share of the training set.")
    header, rows = _summary_rows(table)
    parts += [SUMMARY_CAPTION, markdown_table(header, rows)]
    if len(class_columns(table)) <= MAX_MARKDOWN_CLASSES:
        share_header, share_rows = _share_rows(table)
        parts += [SHARES_CAPTION.replace("are marked", "are bold"), markdown_table(share_header, share_rows)]
    else:
        parts.append(f"Class shares of the {len(class_columns(table))} classes: columns `share <class>` of subsets.csv.")
    return "\n\n".join(parts) + "\n"


# The shared style, and the marked cells and the warnings box of this page.
HTML_STYLE = (
    render.HTML_STYLE
    + """td.low { background: #f8d0d0; font-weight: bold; }
.warnings { border: 2px solid #c0392b; background: #fdf0ee; padding: 0.5em 1em; margin-bottom: 1.5em; }
"""
)


def format_html(table: pd.DataFrame) -> str:
    """A self-contained page with the same content as the Markdown (warnings first)."""
    warnings = warnings_of(table)
    parts = ["<h2>Subsets: what each holds against the full training set</h2>"]
    if warnings:
        items = "".join(f"<li>{html.escape(text)}</li>" for text in warnings)
        parts.append(f'<div class="warnings"><p><b>Warnings</b> (a subset keeps less than half of some class\'s share):</p>'
                     f"<ul>{items}</ul><p>{html.escape(ADVICE).replace('`', '')}</p></div>")
    else:
        parts.append(f"<p>No subset keeps less than {MIN_SHARE_RATIO} of any class's share of the training set.</p>")
    header, rows = _summary_rows(table)
    parts.append(f"<p>{html.escape(SUMMARY_CAPTION)}</p>" + html_table(header, rows))
    share_header, share_rows = _share_rows(table)
    parts.append(f"<p>{html.escape(SHARES_CAPTION.replace('are marked', 'are red'))}</p>" + html_table(share_header, share_rows))
    return html_page("SVP subsets", parts, HTML_STYLE)


def write_subset_tables(
    *,
    data_dir: str | Path,
    subset_files,
    rank_files=(),
    score_files=(),
    proxy_metrics=(),
    csv_out: str | Path,
    markdown_out: str | Path,
    html_out: str | Path,
) -> pd.DataFrame:
    """Write the subset diagnostics as CSV, Markdown and HTML; print the notes and the Markdown."""
    table, notes = diagnose_subsets(
        data_dir=data_dir, subset_files=subset_files, rank_files=rank_files, score_files=score_files, proxy_metrics=proxy_metrics
    )
    with atomic_path(csv_out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    markdown = format_markdown(table)
    with atomic_path(markdown_out) as tmp:
        tmp.write_text(markdown)
    with atomic_path(html_out) as tmp:
        tmp.write_text(format_html(table))
    for note in notes:
        print(f"note: {note}")
    print(markdown)
    return table


def read_subset_table(path: str | Path) -> pd.DataFrame:
    """subsets.csv as written, with text columns kept as text (empty, not NaN)."""
    table = stage_files.read_table(path, "subsets table")
    for column in ("subset", "selection", "proxy", "metric", "min_ratio_class", "warning"):
        table[column] = table[column].fillna("").astype(str) if column in table else ""
    return table


def format_warnings(path: str | Path) -> str:
    """The warnings of a subsets.csv with what to try, for the end of a run ('' if none)."""
    warnings = warnings_of(read_subset_table(path))
    if not warnings:
        return ""
    lines = [f"Warning: {len(warnings)} subset{'s' if len(warnings) > 1 else ''} keep less than half of some class's share "
             f"(details: {Path(path).with_suffix('.md')}, {Path(path).parent / 'class_composition.png'}):"]
    return "\n".join(lines + [f"  - {text}" for text in warnings])
