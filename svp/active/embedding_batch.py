"""The next batch by k-center greedy on a selector's embeddings: core-set active learning.

Sener and Savarese (2018), as the SVP paper applies it to active learning: the round's
selector (trained on the labelled pool) embeds every training example, un-augmented, by
its penultimate layer; k-center greedy (svp.selection.kcenter) then starts from the
labelled pool as its centres and adds, one at a time, the unlabelled example farthest
from every labelled or already chosen one. The batch keeps that greedy order. With the
pool as the first centres there is no random first centre, so no seed; distances equal
as computed go to the lowest index, exact ties in the data are broken by rounding
(svp.selection.kcenter).

What it costs: one forward pass over the training set (reported as the round's scoring
time, as ``svp score``'s is for the uncertainty strategies), then the N x labelled
distances to the pool's centres and one pass over the N embeddings per chosen example:
N x (labelled + batch) distances, about N x d x (labelled + batch) multiply-adds, in
memory linear in N (one float per example beside the embeddings).

This module imports torch (through svp.stages); svp.active.pools, which writes the pool,
does not.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from svp.active import pools
from svp.io import check_writable
from svp.selection.kcenter import k_center_greedy
from svp.stages import check_finite, scoring_job, set_threads
from svp.trainers import EMBEDDINGS

STRATEGY = "kcenter"


def kcenter_next_batch(
    *,
    checkpoint: str | Path,
    pool_file: str | Path,
    data_dir: str | Path,
    budget: float,
    round_: int,
    pool_out: str | Path,
    batch_size: int = 1024,
    run_info: dict | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """Round ``round_``'s pool: the pool before it plus the k-center greedy batch chosen on
    the embeddings of the selector in ``checkpoint`` (a model.pt of ``svp train``)."""
    set_threads(threads)
    check_writable(pool_out)
    # The data first (its checksums are verified), then the model, checked against it:
    # all before the pool's checks in next_batch, and those before the forward pass.
    job, trainer = scoring_job(
        checkpoint=checkpoint, data_dir=data_dir, batch_size=batch_size, workdir=Path(pool_out).parent,
        needs=EMBEDDINGS, user=f"the {STRATEGY} strategy", remedy="choose its batches by an uncertainty strategy instead",
    )  # fmt: skip

    def choose(labelled: np.ndarray, count: int, n_examples: int) -> tuple[np.ndarray, dict]:
        embedded, embedding_seconds = trainer.embeddings(job)
        if len(embedded) != n_examples:  # next_batch read this data's labels: a bug in the trainer
            raise RuntimeError(f"{checkpoint}: {len(embedded):,} embeddings for {n_examples:,} training examples")
        check_finite(embedded, checkpoint, "penultimate-layer embeddings")
        started = time.perf_counter()
        batch = k_center_greedy(embedded, count, initial=labelled, scratch=job.workdir)
        kcenter_seconds = time.perf_counter() - started
        print(
            f"k-center greedy chose {count:,} of {n_examples - len(labelled):,} unlabelled examples "
            f"({embedded.shape[1]}-d embeddings, {len(labelled):,} labelled centres) in {kcenter_seconds:.2f} s",
            flush=True,
        )
        facts = {
            "checkpoint": str(checkpoint),
            "embedding_dimensions": int(embedded.shape[1]),
            "scoring_seconds": embedding_seconds,
            "kcenter_seconds": kcenter_seconds,
        }
        return batch, facts

    return pools.next_batch(
        pool_file=pool_file, data_dir=data_dir, budget=budget, round_=round_, pool_out=pool_out,
        strategy=STRATEGY, chooser=choose, run_info=run_info,
    )  # fmt: skip
