"""Why a text selection wins or loses: who is in each subset of a finished text experiment.

For every subset of ``results/<experiment>/subsets/`` this prints, beside the whole
training set: the share of each label, the texts' mean and median length (characters),
and the share the proxies' rank combination would call wrong (the ranks parquet's
``correct_mean`` below one half). The words of a long, mixed review pull both ways,
which is what makes a bag-of-n-grams proxy unsure of it; this shows how much of a
subset such reviews are.

Run after the experiment: .venv/bin/python bench/explain_text_selection.py results/imdb_fasttext
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from svp import data


def describe(name: str, index: np.ndarray, labels: np.ndarray, lengths: np.ndarray, wrong: np.ndarray | None, classes: list[str]) -> dict:
    row = {"subset": name, "examples": len(index)}
    for label, class_name in enumerate(classes):
        row[f"{class_name} %"] = 100.0 * np.mean(labels[index] == label)
    row["mean length"] = lengths[index].mean()
    row["median length"] = np.median(lengths[index])
    if wrong is not None:
        row["proxies wrong %"] = 100.0 * wrong[index].mean()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="results/<experiment> of a finished text experiment")
    args = parser.parse_args()
    try:
        (texts, labels), _, manifest = data.load_prepared(args.results / "data")
    except data.DataError as error:
        parser.error(str(error))
    if manifest.get("modality") != "text":
        parser.error(f"{args.results}/data holds {manifest.get('modality')} data, not texts")
    lengths = np.diff(texts.offsets)  # UTF-8 bytes: characters, for English text
    ranks = sorted((args.results / "ranks").glob("*.parquet"))
    wrong = None
    if ranks:
        ranked = pd.read_parquet(ranks[0])
        if "correct_mean" in ranked:
            wrong = (ranked.sort_values("index")["correct_mean"].to_numpy() < 0.5).astype(float)
    rows = [describe("all", np.arange(len(labels)), labels, lengths, wrong, manifest["classes"])]
    for path in sorted((args.results / "subsets").glob("*/*.parquet")):
        index = pd.read_parquet(path, columns=["index"])["index"].to_numpy()
        rows.append(describe(f"{path.parent.name} {path.stem}", index, labels, lengths, wrong, manifest["classes"]))
    print(pd.DataFrame(rows).to_string(index=False, float_format="{:.1f}".format))


if __name__ == "__main__":
    main()
