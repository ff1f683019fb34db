"""Choose a fastText schedule on a validation split of the training data, never the test set.

Splits the prepared training texts of a text experiment into training and validation
parts (seeded), trains fastText with each candidate (epochs, learning rate) on all of
the training part and on a fraction of it (a subset, as a selected target would see),
and prints the validation error of each. config/imdb-fasttext.yaml's schedules come
from this.

Run: .venv/bin/python bench/choose_fasttext_schedule.py results/imdb_fasttext/data
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from svp import data
from svp.trainers import fasttext_trainer

CANDIDATES = [(5, 0.1), (5, 0.5), (10, 0.5), (25, 0.5), (25, 1.0)]  # (epochs, learning rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a prepared text data folder (results/<experiment>/data)")
    parser.add_argument("--validation", type=int, default=5000, help="training texts held out for validation")
    parser.add_argument("--fraction", type=float, default=0.3, help="the smaller training part, as a share")
    parser.add_argument("--bucket", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        (texts, labels), _, manifest = data.load_prepared(args.data)
    except data.DataError as error:
        parser.error(str(error))
    if manifest.get("modality") != "text":
        parser.error(f"{args.data} holds {manifest.get('modality')} data, not texts")
    if not 0 < args.validation < len(labels):
        parser.error(f"--validation must be between 1 and {len(labels) - 1}")
    order = np.random.default_rng(args.seed).permutation(len(labels))
    train, validation = order[args.validation :], order[: args.validation]
    validation_texts = texts.strings(validation)
    print(f"{len(train):,} training and {len(validation):,} validation texts from {args.data}")
    with tempfile.TemporaryDirectory() as workdir:
        for epochs, lr in CANDIDATES:
            settings = fasttext_trainer.FastTextSettings.from_training(
                {"lr_schedule": [{"epochs": epochs, "lr": lr}], "fasttext": {"bucket": args.bucket}}
            )
            errors = []
            for share in (1.0, args.fraction):
                part = train[: max(1, round(share * len(train)))]
                model, _ = fasttext_trainer.train(texts.strings(part), labels[part], settings, args.seed, Path(workdir))
                probabilities = fasttext_trainer.probabilities(model, validation_texts, manifest["num_classes"])
                errors.append(f"{share:.0%} ({len(part):,}): {100 * np.mean(probabilities.argmax(1) != labels[validation]):.2f}%")
            print(f"epochs {epochs:3d}, lr {lr:4}: validation error, training on " + ", ".join(errors), flush=True)


if __name__ == "__main__":
    main()
