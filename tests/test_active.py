"""Active learning (svp.active): the plan of rounds, the pool stages, the config section."""

import copy
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from svp.active import job_inputs, pools, rounds
from svp.config import ConfigError, validate_config
from svp.data import load_labels, prepare_dataset
from svp.errors import StageInputError
from svp.parquet import read_parquet_metadata, write_parquet

BASE = {
    "experiment": "al",
    "dataset": {"name": "digits"},
    "proxies": {"cnn": {"model": "small_cnn"}},
    "targets": {"net": {"model": "preact_resnet8"}},
}


def with_active(**active) -> dict:
    return {**copy.deepcopy(BASE), "active_learning": {"selectors": ["cnn"], "budgets": [0.1, 0.2], **active}}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    prepare_dataset({"name": "digits"}, folder)
    return folder


# The plan


def test_pool_sizes_are_rounded_budgets_and_batches_their_differences():
    assert rounds.pool_sizes(50_000, 0.02, [0.1, 0.2, 0.3, 0.4, 0.5]) == [1_000, 5_000, 10_000, 15_000, 20_000, 25_000]
    assert rounds.batch_sizes(50_000, 0.02, [0.1, 0.2, 0.3, 0.4, 0.5]) == [4_000, 5_000, 5_000, 5_000, 5_000]
    # Halves round up: 0.5 x 3 = 1.5 -> 2.
    assert rounds.pool_sizes(3, 0.2, [0.5]) == [1, 2]


@pytest.mark.parametrize(
    ("initial", "budgets", "message"),
    [
        (0.02, [0.1, 0.1], r"budgets\[1\]': 0.1 is not larger than budgets\[0\]"),
        (0.1, [0.05], r"budgets\[0\]': 0.05 is not larger than initial_fraction"),
        (0.02, [0.1, 0.1001], r"budgets\[1\]'.*no more than the 100 of the round before"),
        (0.0001, [0.1], r"initial_fraction'.*labels no example"),
        (0.02, [0.9999], r"budgets\[0\]'.*labels all 1,000 training examples"),
    ],
)
def test_pool_sizes_refuse_rounds_that_label_nothing(initial, budgets, message):
    with pytest.raises(ConfigError, match=message):
        rounds.pool_sizes(1_000, initial, budgets)


def test_round_seeds_are_fixed_and_differ_between_seeds_and_rounds():
    seeds = {(seed, r): rounds.round_seed(seed, r) for seed in range(5) for r in range(10)}
    assert len(set(seeds.values())) == len(seeds)
    assert all(0 <= value < 2**31 for value in seeds.values())
    assert rounds.round_seed(3, 2) == rounds.round_seed("3", "2") == seeds[(3, 2)]


def test_no_active_learning_section_plans_no_active_job():
    config = validate_config(copy.deepcopy(BASE))
    assert "active_learning" not in config
    assert rounds.labellings(config) == [] and rounds.pool_runs(config) == [] and rounds.selector_runs(config) == []
    assert rounds.target_runs(config) == []


def test_a_config_plans_each_labelling_seed_and_round():
    config = validate_config(with_active(selectors=["cnn", "net"], strategies=["entropy", "margin"], seeds=[0, 4]))
    assert config["active_learning"]["initial_fraction"] == 0.02 and config["active_learning"]["random"] is True
    assert rounds.labellings(config) == ["cnn-entropy", "cnn-margin", "net-entropy", "net-margin", "random"]
    assert len(rounds.pool_runs(config)) == 5 * 2 * 2
    # Random labels train no selector; round 1's are shared by a selector's strategies
    # (one per selector and seed), the later rounds' are each labelling's own.
    assert len(rounds.selector_runs(config)) == 4 * 2 * 1
    assert {run["seed"] for run in rounds.selector_runs(config)} == {rounds.round_seed(s, 2) for s in (0, 4)}
    first = rounds.first_selector_runs(config)
    assert sorted((run["selector"], run["run_seed"], run["seed"]) for run in first) == sorted(
        (selector, s, rounds.round_seed(s, 1)) for selector in ("cnn", "net") for s in (0, 4)
    )
    assert rounds.scored_first_selector_runs(config) == first  # entropy and margin both read scores
    assert rounds.selector_role(config, "cnn") == "proxy" and rounds.selector_role(config, "net") == "target"
    assert rounds.budget_of(config, 0) == 0.02 and rounds.budget_of(config, 2) == 0.2


@pytest.mark.parametrize(
    ("active", "message"),
    [
        ({"selectors": ["nope"]}, r"'nope' is neither a proxy \(cnn\) nor a target \(net\)"),
        ({"budgets": [0.2, 0.1]}, r"budgets\[1\]': 0.1 is not larger than budgets\[0\]"),
        ({"budgets": [1.0]}, r"active_learning.budgets\[0\]"),
        ({"strategies": ["el2n"]}, r"active_learning.strategies\[0\]"),
        ({"initial_fraction": 0.0}, r"active_learning.initial_fraction"),
        ({"budgets": [0.1, 0.1005]}, r"budgets\[1\]'.*label nothing"),  # digits: 1,347 training images
        ({"seed": [0]}, r"unknown config key 'active_learning.seed'"),
    ],
)
def test_bad_active_learning_settings_are_refused_before_any_job(active, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(with_active(**active))


def test_a_name_of_both_a_proxy_and_a_target_is_ambiguous():
    config = with_active()
    config["targets"]["cnn"] = {"model": "small_cnn"}
    with pytest.raises(ConfigError, match="names both a proxy and a target"):
        validate_config(config)


def test_a_selector_trains_with_its_round_seed_only():
    job_inputs.checked_round_seed(2, 3, rounds.round_seed(2, 3))
    with pytest.raises(ConfigError, match="trains with seed"):
        job_inputs.checked_round_seed(2, 3, 7)


def test_a_selector_trains_on_the_gpus_of_its_proxies_or_targets_entry():
    config = validate_config({**with_active(selectors=["cnn", "net"]), "targets": {"net": {"model": "preact_resnet8", "gpus": 2}}})
    settings = job_inputs.ActiveJobSettings(config)
    assert settings.selector_gpus(SimpleNamespace(selector="net")) == (2, "targets.net")
    assert settings.selector_gpus(SimpleNamespace(labelling="cnn-entropy")) == (1, "proxies.cnn")


def test_round_one_adds_to_the_shared_start_and_later_rounds_to_their_own_pool():
    start, pool = "start/seed{seed}.parquet", "{labelling}/seed{seed}/round{round}.parquet"
    assert job_inputs.previous_pool("cnn-entropy", 1, 1, start, pool) == "start/seed1.parquet"
    assert job_inputs.previous_pool("random", 1, 3, start, pool) == "random/seed1/round2.parquet"


# The pool stages


def _scores(path, labels, values):
    frame = pd.DataFrame({"index": np.arange(len(labels)), "label": labels, "entropy": values, "margin": values})
    write_parquet(frame, path)


def test_rounds_grow_nested_pools_by_exactly_their_batches(digits, tmp_path):
    labels = load_labels(digits)
    n = len(labels)
    budgets = [0.1, 0.25, 0.4]
    sizes = rounds.pool_sizes(n, 0.05, budgets)
    pools.start_pool(data_dir=digits, fraction=0.05, random_seed=11, pool_out=tmp_path / "round0.parquet")
    scores = np.random.default_rng(0).random(n)
    _scores(tmp_path / "scores.parquet", labels, scores)
    previous = pd.read_parquet(tmp_path / "round0.parquet")
    assert len(previous) == sizes[0] and previous["index"].is_unique and (previous["round"] == 0).all()
    for round_, budget in enumerate(budgets, start=1):
        out = tmp_path / f"round{round_}.parquet"
        random = round_ == 2  # strategies may differ between rounds; each round only extends the pool
        pools.next_batch(
            pool_file=tmp_path / f"round{round_ - 1}.parquet", data_dir=digits, budget=budget, round_=round_, pool_out=out,
            **({"random_seed": 5} if random else {"scores_file": tmp_path / "scores.parquet", "strategy": "entropy"}),
        )  # fmt: skip
        pool = pd.read_parquet(out)
        assert len(pool) == sizes[round_] and pool["index"].is_unique
        # Nested: the pool before is this pool's first rows, unchanged.
        assert pool.iloc[: len(previous)].reset_index(drop=True).equals(previous)
        batch = pool.iloc[len(previous) :]
        assert len(batch) == sizes[round_] - sizes[round_ - 1] and (batch["round"] == round_).all()
        assert not set(batch["index"]) & set(previous["index"])  # chosen from the unlabelled examples only
        assert (pool["label"].to_numpy() == labels[pool["index"]]).all()
        if not random:
            unlabelled = np.setdiff1d(np.arange(n), previous["index"])
            expected = unlabelled[np.argsort(-scores[unlabelled], kind="stable")][: len(batch)]
            assert batch["index"].tolist() == expected.tolist()  # most uncertain first
        facts = read_parquet_metadata(out)
        assert (facts["round"], facts["pool_size"], facts["batch_size"]) == (round_, len(pool), len(batch))
        assert facts["batch_seconds"] >= 0
        previous = pool


def test_labelled_examples_are_never_chosen_again_however_uncertain(digits, tmp_path):
    labels = load_labels(digits)
    pools.start_pool(data_dir=digits, fraction=0.1, random_seed=1, pool_out=tmp_path / "start.parquet")
    start = pd.read_parquet(tmp_path / "start.parquet")["index"].to_numpy()
    scores = np.zeros(len(labels))
    scores[start] = 10.0  # the labelled examples are the most uncertain of all
    scores[7] = 0.5 if 7 not in start else 0.0
    _scores(tmp_path / "scores.parquet", labels, scores)
    pools.next_batch(
        pool_file=tmp_path / "start.parquet", data_dir=digits, budget=0.2, round_=1, pool_out=tmp_path / "round1.parquet",
        scores_file=tmp_path / "scores.parquet", strategy="margin",
    )  # fmt: skip
    batch = pd.read_parquet(tmp_path / "round1.parquet")["index"].to_numpy()[len(start) :]
    assert not set(batch) & set(start)
    if 7 not in start:
        assert batch[0] == 7
    # Ties (all the other zeros) go to the lowest index.
    rest = batch[1:] if 7 not in start else batch
    assert (np.diff(rest) > 0).all()


def test_the_same_seed_gives_the_same_pools_and_another_seed_others(digits, tmp_path):
    made = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        pools.start_pool(data_dir=digits, fraction=0.05, random_seed=seed, pool_out=tmp_path / f"{name}0.parquet")
        pools.next_batch(
            pool_file=tmp_path / f"{name}0.parquet", data_dir=digits, budget=0.2, round_=1,
            pool_out=tmp_path / f"{name}1.parquet", random_seed=seed + 100,
        )  # fmt: skip
        made[name] = pd.read_parquet(tmp_path / f"{name}1.parquet")
    assert made["a"].equals(made["b"])
    assert not made["a"]["index"].equals(made["c"]["index"])


def test_bad_pools_and_scores_are_refused_naming_the_file(digits, tmp_path):
    labels = load_labels(digits)
    pools.start_pool(data_dir=digits, fraction=0.05, random_seed=0, pool_out=tmp_path / "start.parquet")
    start = pd.read_parquet(tmp_path / "start.parquet")
    common = {"data_dir": digits, "round_": 1, "pool_out": tmp_path / "out.parquet", "random_seed": 1}

    relabelled = start.assign(label=(start["label"] + 1) % 10)
    write_parquet(relabelled, tmp_path / "relabelled.parquet")
    with pytest.raises(StageInputError, match=r"relabelled.parquet, row 0: example \d+ has label"):
        pools.next_batch(pool_file=tmp_path / "relabelled.parquet", budget=0.2, **common)

    doubled = pd.concat([start, start.iloc[:1]])
    write_parquet(doubled, tmp_path / "doubled.parquet")
    with pytest.raises(StageInputError, match="doubled.parquet, row .*listed again"):
        pools.next_batch(pool_file=tmp_path / "doubled.parquet", budget=0.2, **common)

    with pytest.raises(StageInputError, match="would label nothing"):
        pools.next_batch(pool_file=tmp_path / "start.parquet", budget=0.05, **common)

    # Round 2 must add to round 1's pool, not to the start.
    with pytest.raises(StageInputError, match="the pool of round 0, but round 2 adds to the pool of round 1"):
        pools.next_batch(pool_file=tmp_path / "start.parquet", budget=0.2, **{**common, "round_": 2})

    values = np.random.default_rng(0).random(len(labels))
    values[3] = np.nan
    _scores(tmp_path / "nan.parquet", labels, values)
    with pytest.raises(StageInputError, match=r"nan.parquet, row 3: entropy is nan"):
        pools.next_batch(
            pool_file=tmp_path / "start.parquet", data_dir=digits, budget=0.2, round_=1, pool_out=tmp_path / "out.parquet",
            scores_file=tmp_path / "nan.parquet", strategy="entropy",
        )  # fmt: skip
    _scores(tmp_path / "relabelled_scores.parquet", (labels + 1) % 10, np.zeros(len(labels)))
    with pytest.raises(StageInputError, match=r"relabelled_scores.parquet: example 0 has label \d, but the training data's is"):
        pools.next_batch(
            pool_file=tmp_path / "start.parquet", data_dir=digits, budget=0.2, round_=1, pool_out=tmp_path / "out.parquet",
            scores_file=tmp_path / "relabelled_scores.parquet", strategy="entropy",
        )  # fmt: skip
    _scores(tmp_path / "short.parquet", labels[:100], np.zeros(100))
    with pytest.raises(StageInputError, match="short.parquet: 100 rows, but the training set has"):
        pools.next_batch(
            pool_file=tmp_path / "start.parquet", data_dir=digits, budget=0.2, round_=1, pool_out=tmp_path / "out.parquet",
            scores_file=tmp_path / "short.parquet", strategy="entropy",
        )  # fmt: skip
    assert not (tmp_path / "out.parquet").exists()


# k-center greedy (core-set active learning): the batch from the selector's embeddings

SELECTOR_TRAINING = {"batch_size": 32, "lr_schedule": [{"epochs": 2, "lr": 0.05}], "eval_every": 0}


def test_kcenter_is_a_strategy_that_reads_the_selectors_model_not_scores():
    config = validate_config(with_active(selectors=["cnn", "net"], strategies=["entropy", "kcenter"]))
    assert rounds.labellings(config) == ["cnn-entropy", "cnn-kcenter", "net-entropy", "net-kcenter", "random"]
    assert {run["labelling"] for run in rounds.selector_runs(config)} == {"cnn-entropy", "cnn-kcenter", "net-entropy", "net-kcenter"}
    assert {run["labelling"] for run in rounds.scored_selector_runs(config)} == {"cnn-entropy", "net-entropy"}
    scores, model = "{labelling}/{run_seed}/{round}/{seed}/scores", "{labelling}/{run_seed}/{round}/{seed}/model.pt"
    first = ("start/{run_seed}/{selector}/{seed}/scores", "start/{run_seed}/{selector}/{seed}/model.pt")
    k = rounds.round_seed(0, 2)
    assert job_inputs.batch_inputs("cnn-kcenter", 0, 2, "pool1", scores, model, *first) == {"pool": "pool1", "checkpoint": f"cnn-kcenter/0/2/{k}/model.pt"}
    assert job_inputs.batch_inputs("cnn-entropy", 0, 2, "pool1", scores, model, *first) == {"pool": "pool1", "scores": f"cnn-entropy/0/2/{k}/scores"}
    assert job_inputs.batch_inputs("random", 0, 2, "pool1", scores, model, *first) == {"pool": "pool1"}
    # Round 1 reads the selector its strategies share.
    k = rounds.round_seed(0, 1)
    assert job_inputs.batch_inputs("cnn-kcenter", 0, 1, "pool0", scores, model, *first) == {"pool": "pool0", "checkpoint": f"start/0/cnn/{k}/model.pt"}
    assert job_inputs.batch_inputs("cnn-entropy", 0, 1, "pool0", scores, model, *first) == {"pool": "pool0", "scores": f"start/0/cnn/{k}/scores"}
    assert job_inputs.embeds("cnn-kcenter") and not job_inputs.embeds("cnn-entropy") and not job_inputs.embeds("random")
    assert job_inputs.batch_source_args("cnn-kcenter", 0, 2, None, "a b/model.pt", batch_size=256, threads=2) == (
        "--checkpoint 'a b/model.pt' --strategy kcenter --batch-size 256 --threads 2"
    )


@pytest.fixture(scope="module")
def selector(digits, tmp_path_factory):
    """A small_cnn selector trained on a random 5 % start pool of digits (round 1's selector)."""
    from svp.stages import train_run

    folder = tmp_path_factory.mktemp("selector")
    pools.start_pool(data_dir=digits, fraction=0.05, random_seed=11, pool_out=folder / "start.parquet")
    train_run(
        model_name="small_cnn", training=SELECTOR_TRAINING, seed=5, data_dir=digits, model_out=folder / "model.pt",
        history_out=folder / "history.csv", metrics_out=folder / "metrics.json", subset=folder / "start.parquet", threads=1,
    )  # fmt: skip
    return folder


def _embeddings(model, digits):
    """The selector's penultimate-layer embedding of every training example, as its trainer computes it."""
    from pathlib import Path

    from svp import data
    from svp.models import specs
    from svp.trainers import ScoringJob, implementation
    from svp.stages import read_model_checkpoint

    train, _, manifest = data.load_prepared(digits)
    stored = read_model_checkpoint(model)
    job = ScoringJob(checkpoint=stored, checkpoint_path=Path(model), train=train, manifest=manifest, data_dir=Path(digits),
                     batch_size=1024, workdir=Path(model).parent)  # fmt: skip
    return implementation(specs.model_spec(stored["model_name"]).trainer).embeddings(job)[0]


def test_the_kcenter_batch_is_k_center_greedy_from_the_labelled_pool_on_the_selectors_embeddings(digits, selector, tmp_path):
    from svp.active.embedding_batch import kcenter_next_batch
    from svp.selection.kcenter import k_center_greedy

    labels = load_labels(digits)
    n = len(labels)
    sizes = rounds.pool_sizes(n, 0.05, [0.1, 0.2])
    previous = pd.read_parquet(selector / "start.parquet")
    embedded = _embeddings(selector / "model.pt", digits)
    for round_, budget in ((1, 0.1), (2, 0.2)):  # round 2 reuses the selector: what matters here is the pool
        pool_in = selector / "start.parquet" if round_ == 1 else tmp_path / "round1.parquet"
        out = tmp_path / f"round{round_}.parquet"
        kcenter_next_batch(checkpoint=selector / "model.pt", pool_file=pool_in, data_dir=digits, budget=budget, round_=round_,
                           pool_out=out, run_info={"labelling": "cnn-kcenter"}, threads=1)  # fmt: skip
        pool = pd.read_parquet(out)
        assert len(pool) == sizes[round_] and pool["index"].is_unique
        assert pool.iloc[: len(previous)].reset_index(drop=True).equals(previous)  # nested
        batch = pool.iloc[len(previous) :]
        assert len(batch) == sizes[round_] - sizes[round_ - 1] and (batch["round"] == round_).all()
        assert not set(batch["index"]) & set(previous["index"])
        assert (pool["label"].to_numpy() == labels[pool["index"]]).all()
        labelled = previous["index"].to_numpy()
        expected = k_center_greedy(embedded, len(batch), initial=labelled)
        assert batch["index"].tolist() == expected.tolist()  # in greedy order
        # And what greedy means, in float64: each pick is (up to rounding) the unlabelled
        # example farthest from its nearest labelled or already chosen example.
        points = embedded.astype(np.float64)
        nearest = ((points[:, None, :] - points[None, labelled, :]) ** 2).sum(axis=2).min(axis=1)
        nearest[labelled] = -1.0
        for pick in batch["index"]:
            assert nearest[pick] >= nearest.max() * (1 - 1e-4)
            nearest = np.minimum(nearest, ((points - points[pick]) ** 2).sum(axis=1))
            nearest[pick] = -1.0
        facts = read_parquet_metadata(out)
        assert facts["strategy"] == "kcenter" and facts["labelling"] == "cnn-kcenter"
        assert facts["checkpoint"] == str(selector / "model.pt") and facts["embedding_dimensions"] == embedded.shape[1]
        assert facts["scoring_seconds"] > 0 and facts["batch_seconds"] >= facts["kcenter_seconds"] > 0
        assert (facts["round"], facts["pool_size"], facts["batch_size"]) == (round_, len(pool), len(batch))
        previous = pool


def test_kcenter_pools_are_the_same_each_time_and_differ_from_uncertainty_and_random_ones(digits, selector, tmp_path):
    from svp.active.embedding_batch import kcenter_next_batch

    for name in ("a", "b"):
        kcenter_next_batch(checkpoint=selector / "model.pt", pool_file=selector / "start.parquet", data_dir=digits,
                           budget=0.2, round_=1, pool_out=tmp_path / f"{name}.parquet", threads=1)  # fmt: skip
    first = pd.read_parquet(tmp_path / "a.parquet")
    assert first.equals(pd.read_parquet(tmp_path / "b.parquet"))
    pools.next_batch(pool_file=selector / "start.parquet", data_dir=digits, budget=0.2, round_=1,
                     pool_out=tmp_path / "random.parquet", random_seed=3)  # fmt: skip
    assert set(first["index"]) != set(pd.read_parquet(tmp_path / "random.parquet")["index"])


def test_svp_active_next_by_kcenter_and_its_refusals(digits, selector, tmp_path, capsys):
    from svp.cli import main

    common = ["active", "next", "--pool", str(selector / "start.parquet"), "--data", str(digits), "--budget", "0.1",
              "--round", "1", "--out", str(tmp_path / "out.parquet")]  # fmt: skip
    model = str(selector / "model.pt")
    assert main([*common, "--checkpoint", model, "--strategy", "kcenter", "--threads", "1"]) == 0
    assert read_parquet_metadata(tmp_path / "out.parquet")["strategy"] == "kcenter"
    (tmp_path / "out.parquet").unlink()
    capsys.readouterr()
    for extra, message in (
        (["--checkpoint", model, "--strategy", "entropy"], "--checkpoint needs --strategy, one of kcenter"),
        (["--checkpoint", model], "--checkpoint needs --strategy"),
        (["--scores", model, "--strategy", "kcenter"], "--scores needs --strategy, one of least_confidence"),
        (["--random-seed", "1", "--threads", "2"], "--batch-size and --threads go with --checkpoint"),
        (["--checkpoint", str(selector / "start.parquet"), "--strategy", "kcenter"], "start.parquet: not a readable model checkpoint"),
    ):
        assert main([*common, *extra]) != 0
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: one source only
        main([*common, "--checkpoint", model, "--random-seed", "1", "--strategy", "kcenter"])
    assert not (tmp_path / "out.parquet").exists()


def test_a_chooser_must_give_its_count_of_distinct_unlabelled_examples(digits, tmp_path):
    pools.start_pool(data_dir=digits, fraction=0.05, random_seed=0, pool_out=tmp_path / "start.parquet")
    common = {"pool_file": tmp_path / "start.parquet", "data_dir": digits, "budget": 0.1, "round_": 1,
              "pool_out": tmp_path / "out.parquet", "strategy": "kcenter"}  # fmt: skip

    def unlabelled(labelled, count, n):
        return np.setdiff1d(np.arange(n), labelled)[:count]

    for bad in (
        lambda labelled, count, n: (np.r_[labelled[:1], unlabelled(labelled, count, n)[1:]], {}),  # a labelled one
        lambda labelled, count, n: (np.r_[unlabelled(labelled, count, n)[:-1], unlabelled(labelled, 1, n)], {}),  # twice
    ):
        with pytest.raises(RuntimeError, match="repeated or already labelled"):
            pools.next_batch(chooser=bad, **common)
    with pytest.raises(RuntimeError, match="int64 of shape \\(3,\\), not 68 indices"):
        pools.next_batch(chooser=lambda labelled, count, n: (unlabelled(labelled, 3, n), {}), **common)
    with pytest.raises(StageInputError, match="a chooser gives the strategies kcenter, not 'entropy'"):
        pools.next_batch(chooser=unlabelled, **{**common, "strategy": "entropy"})
    assert not (tmp_path / "out.parquet").exists()
    pools.next_batch(chooser=lambda labelled, count, n: (unlabelled(labelled, count, n), {"scoring_seconds": 0.0}), **common)
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 135


# The workflow without active learning


def _dry_run_jobs(snakefile, workdir, configfile):
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--dry-run", "--snakefile", str(snakefile), "--directory", str(workdir),
         "--cores", "2", "--resources", "gpu=1", "--configfile", str(configfile)],
        capture_output=True, text=True, cwd=workdir, env={**os.environ, "PYTHONPATH": str(snakefile.parent)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = (result.stdout + result.stderr).splitlines()
    # Each job's rule and files, without the job ids and timestamps that differ between runs.
    return sorted(line.strip() for line in lines if line.strip().startswith(("rule ", "localrule ", "input:", "output:")))


def test_a_config_without_active_learning_plans_the_same_jobs_as_a_workflow_without_it(tmp_path):
    """The default config's DAG is what it was before active learning: the Snakefile
    without active.smk (and its files in `all`) plans exactly the same jobs."""
    import shutil
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    without = tmp_path / "without"
    for part in ("svp", "workflow", "config"):
        shutil.copytree(repo / part, without / part, ignore=shutil.ignore_patterns("__pycache__"))
    snakefile = (repo / "Snakefile").read_text()
    for line in ('include: "workflow/rules/active_common.smk"\n', 'include: "workflow/rules/active.smk"\n', "        active_learning_files(),\n"):
        assert line in snakefile
        snakefile = snakefile.replace(line, "")
    (without / "Snakefile").write_text(snakefile)
    runs = {}
    for name, folder in (("with", repo), ("without", without)):
        workdir = tmp_path / f"run-{name}"
        workdir.mkdir()
        runs[name] = _dry_run_jobs(folder / "Snakefile", workdir, repo / "config/config.yaml")
    assert runs["with"] == runs["without"] and any(line.startswith("rule train_target") for line in runs["with"])


# The report


def _round_files(folder, labelling, seed, round_, *, selector_seconds, scoring_seconds, role="proxy", error=10.0):
    import json

    base = folder / labelling / f"seed{seed}" / f"round{round_}"
    base.mkdir(parents=True)
    facts = {"role": "pool", "labelling": labelling, "seed": seed, "round": round_, "budget": 0.1 * round_,
             "pool_size": 10 * round_, "batch_size": 10, "batch_seconds": 0.5, "strategy": "entropy"}  # fmt: skip
    selector, _, strategy = labelling.partition("-")
    embedding = strategy == "kcenter"  # the batch job embeds: its pool holds the scoring time, and no score file is made
    if embedding:
        facts |= {"strategy": strategy, "scoring_seconds": scoring_seconds}
    write_parquet(pd.DataFrame({"index": [0], "label": [0], "round": [round_]}), base / "pool.parquet", facts)
    files = {"pool": base / "pool.parquet"}
    if labelling != "random":
        metrics = {"role": "selector", "labelling": labelling, "selector": selector, "selector_role": role,
                   "strategy": strategy, "run_seed": seed, "round": round_, "seed": 99, "test_error": 50.0,
                   "seconds": selector_seconds}  # fmt: skip
        (base / "selector.json").write_text(json.dumps(metrics))
        files["selector"] = base / "selector.json"
    if labelling != "random" and not embedding:
        write_parquet(pd.DataFrame({"index": [0], "label": [0]}), base / "scores.parquet",
                      {"role": "selector", "labelling": labelling, "run_seed": seed, "round": round_, "scoring_seconds": scoring_seconds})  # fmt: skip
        files["scores"] = base / "scores.parquet"
    target = {"role": "active_target", "target": "net", "labelling": labelling, "strategy": strategy or "random",
              "seed": seed, "round": round_, "budget": 0.1 * round_, "test_error": error + seed, "seconds": 1.0}  # fmt: skip
    (base / "target.json").write_text(json.dumps(target))
    return files | {"target": base / "target.json"}


def test_the_report_sums_each_rounds_selection_time_and_compares_proxy_with_target_selection(tmp_path):
    from svp.report import active

    files = []
    for seed in (0, 1):
        for round_ in (1, 2):
            files.append(_round_files(tmp_path, "cnn-entropy", seed, round_, selector_seconds=1.0, scoring_seconds=0.5))
            files.append(_round_files(tmp_path, "net-entropy", seed, round_, selector_seconds=9.0, scoring_seconds=2.5, role="target"))
            files.append(_round_files(tmp_path, "random", seed, round_, selector_seconds=0, scoring_seconds=0, error=20.0))
    pick = lambda kind: [f[kind] for f in files if kind in f]  # noqa: E731
    rounds_table = active.round_table(pick("pool"), pick("selector"), pick("scores"))
    proxy = rounds_table[rounds_table["labelling"] == "cnn-entropy"]
    assert proxy["selection_seconds"].tolist() == [2.0, 2.0, 2.0, 2.0]  # 1 + 0.5 + 0.5 each round
    assert proxy["cumulative_selection_seconds"].tolist() == [2.0, 4.0, 2.0, 4.0]
    assert rounds_table.loc[rounds_table["labelling"] == "random", "selection_seconds"].tolist() == [0.5] * 4
    results = active.results_table(rounds_table, active.load_target_runs(pick("target"))).set_index(["labelling", "budget"])
    row = results.loc[("cnn-entropy", 0.2)]
    assert row["runs"] == 2 and row["error_mean"] == 10.5 and row["error_std"] == pytest.approx(np.std([10, 11], ddof=1))
    assert row["compared_with"] == "net-entropy" and row["selection_speedup"] == pytest.approx(24.0 / 4.0)
    assert np.isnan(results.loc[("random", 0.2), "selection_speedup"])

    with pytest.raises(StageInputError, match="no selector metrics.json or score file for cnn-entropy, seed 0, round 1"):
        active.round_table(pick("pool"), pick("selector")[1:], pick("scores"))
    # The same target run twice would pass for two seeds in the mean and std.
    with pytest.raises(StageInputError, match="the target run net on cnn-entropy, seed 0, round 1 is given more than once"):
        active.load_target_runs([*pick("target"), pick("target")[0]])


def test_the_report_takes_a_kcenter_rounds_embedding_time_from_its_pool(tmp_path):
    from svp.report import active

    files = []
    for round_ in (1, 2):
        files.append(_round_files(tmp_path, "cnn-kcenter", 0, round_, selector_seconds=1.0, scoring_seconds=0.25))
        files.append(_round_files(tmp_path, "net-kcenter", 0, round_, selector_seconds=9.0, scoring_seconds=1.25, role="target"))
        files.append(_round_files(tmp_path, "cnn-entropy", 0, round_, selector_seconds=1.0, scoring_seconds=0.5))
    assert not any("scores" in f for f in files if "kcenter" in str(f["pool"]))
    pick = lambda kind: [f[kind] for f in files if kind in f]  # noqa: E731
    rounds_table = active.round_table(pick("pool"), pick("selector"), pick("scores")).set_index(["labelling", "round"])
    assert rounds_table.loc[("cnn-kcenter", 1), "scoring_seconds"] == 0.25
    assert rounds_table.loc[("cnn-kcenter", 2), "selection_seconds"] == 1.0 + 0.25 + 0.5
    assert rounds_table.loc[("cnn-entropy", 2), "selection_seconds"] == 1.0 + 0.5 + 0.5
    results = active.results_table(rounds_table.reset_index(), active.load_target_runs(pick("target")))
    row = results.set_index(["labelling", "budget"]).loc[("cnn-kcenter", 0.2)]
    assert row["compared_with"] == "net-kcenter" and row["selection_speedup"] == pytest.approx((2 * 10.75) / (2 * 1.75))

    # A score file for a kcenter round (whose batch read none) is a mix-up, not a second scoring time.
    stray = tmp_path / "stray.parquet"
    write_parquet(pd.DataFrame({"index": [0], "label": [0]}), stray,
                  {"role": "selector", "labelling": "cnn-kcenter", "run_seed": 0, "round": 1, "scoring_seconds": 3.0})  # fmt: skip
    with pytest.raises(StageInputError, match="cnn-kcenter, seed 0, round 1: a score file was given"):
        active.round_table(pick("pool"), pick("selector"), [*pick("scores"), stray])
