"""Stage functions on real data (scikit-learn digits), without Snakemake."""

import numpy as np
import pandas as pd
import pytest

from svp.data import prepare_dataset
from svp.io import atomic_path
from svp.parquet import read_parquet_metadata
from svp.stages import score_run, train_run
from svp.selection.subsets import rank_runs, select_subset

TRAINING = {"batch_size": 128, "lr_schedule": [{"epochs": 2, "lr": 0.05}], "eval_every": 0}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    prepare_dataset({"name": "digits"}, folder)
    return folder


def _proxy_scores(digits, out, seed):
    run = out / f"seed{seed}"
    train_run(
        model_name="small_cnn", training=TRAINING, seed=seed, data_dir=digits, model_out=run / "model.pt",
        history_out=run / "history.csv", metrics_out=run / "metrics.json", threads=1,
    )
    score_run(
        checkpoint=run / "model.pt", data_dir=digits, scores_out=out / f"scores{seed}.parquet",
        run_info={"proxy": "cnn", "seed": seed},
    )
    return pd.read_parquet(out / f"scores{seed}.parquet")


def test_same_seed_gives_the_same_scores_on_cpu(digits, tmp_path):
    first = _proxy_scores(digits, tmp_path / "a", 0)
    again = _proxy_scores(digits, tmp_path / "b", 0)
    other = _proxy_scores(digits, tmp_path / "c", 1)
    pd.testing.assert_frame_equal(first, again)
    assert not np.array_equal(first["entropy"], other["entropy"])
    assert len(first) == first["index"].max() + 1  # every training example, once
    assert read_parquet_metadata(tmp_path / "a/scores0.parquet")["scoring_seconds"] > 0


def test_rank_and_select_from_real_scores(digits, tmp_path):
    scores = [_proxy_scores(digits, tmp_path, seed) for seed in (0, 1)]
    ranked = rank_runs(score_files=[tmp_path / "scores0.parquet", tmp_path / "scores1.parquet"], metric="entropy", ranks_out=tmp_path / "ranks.parquet")
    assert sorted(ranked["rank"]) == list(range(len(ranked)))
    mean_entropy = (scores[0]["entropy"] + scores[1]["entropy"]) / 2
    top = ranked.sort_values("rank")["index"].head(50)
    assert mean_entropy[top].mean() > mean_entropy.mean()  # the top of the ranking is the uncertain end
    subsets = {f: select_subset(fraction=f, subset_out=tmp_path / f"{f}.parquet", class_balanced=False, ranks_file=tmp_path / "ranks.parquet") for f in (0.2, 0.6)}
    assert set(subsets[0.2]["index"]) <= set(subsets[0.6]["index"])
    random_a = select_subset(fraction=0.2, subset_out=tmp_path / "ra.parquet", class_balanced=True, data_dir=digits, random_seed=0)
    random_b = select_subset(fraction=0.2, subset_out=tmp_path / "rb.parquet", class_balanced=True, data_dir=digits, random_seed=1)
    assert len(random_a) == len(subsets[0.2]) and set(random_a["index"]) != set(random_b["index"])


def test_a_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert not target.exists() and not list(tmp_path.iterdir())


def test_history_csv_is_what_pandas_would_write(tmp_path):
    from svp.stages import _write_csv

    rows = [
        {"epoch": 1, "lr": 0.01, "train_loss": 2.302585092994046, "epoch_seconds": 3e-07, "test_error": 66.66666666666667},
        {"epoch": 2, "lr": 0.1, "train_loss": float("nan"), "epoch_seconds": 12345678.9},
    ]
    _write_csv(tmp_path / "ours.csv", rows)
    pd.DataFrame(rows).to_csv(tmp_path / "pandas.csv", index=False)
    assert (tmp_path / "ours.csv").read_text() == (tmp_path / "pandas.csv").read_text()



def test_a_model_pt_must_hold_what_its_models_trainer_wrote(digits, tmp_path):
    """A torch network's weights under fastText's name (or the reverse) are refused, not half read."""
    import torch

    from svp.errors import StageInputError
    from svp.stages import read_model_checkpoint

    _proxy_scores(digits, tmp_path, 0)
    torch_run = torch.load(tmp_path / "seed0/model.pt", weights_only=True)
    assert read_model_checkpoint(tmp_path / "seed0/model.pt")["model_name"] == "small_cnn"
    for name, checkpoint in {
        "fasttext.pt": {**torch_run, "model_name": "fasttext"},
        "no_weights.pt": {k: v for k, v in torch_run.items() if k != "state_dict"},
        "unknown_and_no_weights.pt": {**{k: v for k, v in torch_run.items() if k != "state_dict"}, "model_name": "x"},
    }.items():
        torch.save(checkpoint, tmp_path / name)
        with pytest.raises(StageInputError, match=f"{name}: not a model checkpoint written by `svp train`"):
            read_model_checkpoint(tmp_path / name)


def test_scores_come_from_float32_logits_whatever_the_training_precision(digits, tmp_path, monkeypatch):
    """On CUDA a run trains and evaluates under bfloat16 autocast; its scores must not."""
    from svp.trainers import torch_trainer
    from svp.training import loop

    asked = []

    def recording_logit_chunks(model, data, batch_size, mixed_precision=None):
        asked.append(mixed_precision)  # None: left to logit_chunks' default, which may change
        return loop.logit_chunks(model, data, batch_size, bool(mixed_precision))

    monkeypatch.setattr(torch_trainer, "logit_chunks", recording_logit_chunks)
    run = tmp_path / "run"
    train_run(
        model_name="small_cnn", training={**TRAINING, "mixed_precision": True}, seed=0, data_dir=digits,
        model_out=run / "model.pt", history_out=run / "history.csv", metrics_out=run / "metrics.json", threads=1,
    )
    asked.clear()
    score_run(checkpoint=run / "model.pt", data_dir=digits, scores_out=tmp_path / "scores.parquet")
    assert asked == [False]


def test_scores_are_written_a_chunk_at_a_time_and_read_as_one(digits, tmp_path, monkeypatch):
    """Scoring streams: with chunks of one 64-example batch, the file has a row group per
    chunk and the same rows, indices and facts as the file scored in one chunk."""
    import pyarrow.parquet as pq

    from svp.trainers import torch_trainer
    from svp.training import loop

    whole = _proxy_scores(digits, tmp_path, 0)
    chunked = tmp_path / "chunked.parquet"
    monkeypatch.setattr(
        torch_trainer, "logit_chunks", lambda *args, **kwargs: loop.logit_chunks(*args, **kwargs, values=64 * 10)
    )
    scored = score_run(checkpoint=tmp_path / "seed0/model.pt", data_dir=digits, scores_out=chunked, batch_size=64, run_info={"proxy": "cnn", "seed": 0})
    assert scored == len(whole)
    assert pq.ParquetFile(chunked).metadata.num_row_groups == -(-len(whole) // 64) > 1
    pd.testing.assert_frame_equal(pd.read_parquet(chunked), whole, check_exact=False, rtol=1e-6)
    facts = read_parquet_metadata(chunked)
    assert facts["proxy"] == "cnn" and facts["scoring_seconds"] > 0
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]  # no temporary file left


def test_a_chunk_of_non_finite_outputs_names_its_first_example_and_leaves_no_file(digits, tmp_path, monkeypatch):
    import torch

    from svp.errors import StageInputError
    from svp.trainers import torch_trainer
    from svp.training import loop

    _proxy_scores(digits, tmp_path, 0)

    def poisoned(*args, **kwargs):
        for number, logits in enumerate(loop.logit_chunks(*args, **kwargs, values=64 * 10)):
            if number == 2:
                logits = logits.clone()
                logits[5, 3] = torch.nan
            yield logits

    monkeypatch.setattr(torch_trainer, "logit_chunks", poisoned)
    out = tmp_path / "out" / "scores.parquet"
    with pytest.raises(StageInputError, match=r"not finite \(NaN or infinite\) for training example 133 \(1 of examples 128 to 191\)"):
        score_run(checkpoint=tmp_path / "seed0/model.pt", data_dir=digits, scores_out=out, batch_size=64)
    assert not list(out.parent.iterdir())
