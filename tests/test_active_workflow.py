"""Active learning through Snakemake on digits: the rounds (by entropy, k-center greedy and at random), the
report, a changed budget, a kill and resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.test_workflow import REPO, planned_rules

TRAINING = {"batch_size": 64, "lr_schedule": [{"epochs": 2, "lr": 0.05}], "eval_every": 0}
CONFIG = {
    "experiment": "al",
    "dataset": {"name": "digits"},
    "proxies": {"cnn": {"model": "small_cnn", "seeds": [0], "training": TRAINING}},
    "targets": {"net": {"model": "preact_resnet8", "seeds": [0], "training": TRAINING}},
    "selection": {"metrics": ["entropy"], "fractions": [1.0]},
    "active_learning": {"selectors": ["cnn", "net"], "strategies": ["entropy", "kcenter"], "initial_fraction": 0.05, "budgets": [0.1, 0.2, 0.3], "seeds": [0]},
}
ACTIVE = "results/al/active"
LABELLINGS = ("cnn-entropy", "cnn-kcenter", "net-entropy", "net-kcenter", "random")

pytestmark = pytest.mark.workflow


def command(workdir: Path, config: dict, *args: str) -> list[str]:
    (workdir / "al.yaml").write_text(yaml.safe_dump(config))
    return [
        sys.executable, "-m", "snakemake", "active_learning", *args, "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--cores", "2", "--resources", "gpu=1", "--configfile", str(workdir / "al.yaml"),
    ]  # fmt: skip


def run(workdir: Path, *args: str, config: dict = CONFIG) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(command(workdir, config, *args), capture_output=True, text=True, cwd=workdir, env=env)
    if result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def pool(workdir: Path, labelling: str, round_: int) -> pd.DataFrame:
    path = f"{ACTIVE}/start/seed0/pool.parquet" if round_ == 0 else f"{ACTIVE}/{labelling}/seed0/round{round_}/pool.parquet"
    return pd.read_parquet(workdir / path)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("active")
    run(workdir)
    return workdir


def test_every_round_extends_the_pool_by_its_batch_from_the_unlabelled_examples(finished):
    n = json.loads((finished / "results/al/data/manifest.json").read_text())["n_train"]
    sizes = [int(np.floor(f * n + 0.5)) for f in (0.05, 0.1, 0.2, 0.3)]
    for labelling in LABELLINGS:
        before = pool(finished, labelling, 0)
        assert len(before) == sizes[0]
        for round_ in (1, 2, 3):
            after = pool(finished, labelling, round_)
            assert len(after) == sizes[round_] and after["index"].is_unique
            assert after.iloc[: len(before)].reset_index(drop=True).equals(before)
            assert (after.iloc[len(before) :]["round"] == round_).all()
            before = after
        target = json.loads((finished / f"{ACTIVE}/{labelling}/seed0/round3/targets/net/metrics.json").read_text())
        assert target["n_train"] == sizes[3] and target["budget"] == 0.3 and 0 <= target["test_error"] <= 100
    # Each selector of round r trained on pool r-1, with the round's seed.
    from svp.active.rounds import round_seed

    selector = json.loads((finished / f"{ACTIVE}/cnn-entropy/seed0/round2/selector/seed{round_seed(0, 2)}/metrics.json").read_text())
    assert selector["n_train"] == sizes[1] and selector["seed"] == round_seed(0, 2) and selector["role"] == "selector"
    # The pools differ from random labels and from each other: the selectors chose.
    finals = [frozenset(pool(finished, labelling, 3)["index"]) for labelling in LABELLINGS]
    assert len(set(finals)) == len(LABELLINGS)


def test_a_kcenter_round_labels_by_k_center_greedy_on_its_selectors_embeddings_and_scores_nothing(finished):
    import torch

    from svp.active.rounds import round_seed
    from svp.parquet import read_parquet_metadata
    from svp.selection.kcenter import k_center_greedy
    from tests.test_active import _embeddings

    for labelling in ("cnn-kcenter", "net-kcenter"):
        # No score file: the batch job read the selector's model.pt.
        selectors = finished / f"{ACTIVE}/{labelling}/seed0"
        assert sorted(path.name for path in selectors.glob("round*/selector/seed*/*")) == sorted(
            ["history.csv", "metrics.json", "model.pt"] * 2  # round 1's is shared, under start/
        )
        assert not (finished / f"results/al/logs/score_selector/{labelling}").exists()
        for round_ in (1, 2, 3):
            facts = read_parquet_metadata(finished / f"{ACTIVE}/{labelling}/seed0/round{round_}/pool.parquet")
            assert facts["strategy"] == "kcenter" and facts["scoring_seconds"] > 0
            selector = labelling.partition("-")[0]
            folder = f"start/seed0/selectors/{selector}" if round_ == 1 else f"{labelling}/seed0/round{round_}/selector"
            assert facts["checkpoint"] == f"{ACTIVE}/{folder}/seed{round_seed(0, round_)}/model.pt"
    # Round 2's batch is k-center greedy from pool 1 on the embeddings of round 2's selector
    # (one torch thread, as the rule ran it without a GPU).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = finished / f"{ACTIVE}/cnn-kcenter/seed0/round2/selector/seed{round_seed(0, 2)}/model.pt"
        embedded = _embeddings(model, finished / "results/al/data")
    finally:
        torch.set_num_threads(threads)
    before, after = pool(finished, "cnn-kcenter", 1), pool(finished, "cnn-kcenter", 2)
    expected = k_center_greedy(embedded, len(after) - len(before), initial=before["index"].to_numpy())
    assert after["index"].iloc[len(before) :].tolist() == expected.tolist()


def test_round_one_selectors_are_trained_once_per_selector_and_choose_as_their_own_would(finished, tmp_path):
    """A round-1 selector trains on the shared start with round 1's seed, whatever the
    strategy: one per selector now, not one per labelling, and the same model a labelling
    would have trained for itself, so the same pools."""
    from svp.active.rounds import round_seed

    dry = run(tmp_path, "--dry-run")
    counts = {}
    for line in (dry.stdout + dry.stderr).splitlines():
        if line.startswith(("rule ", "localrule ")):
            counts[line.split()[1].rstrip(":")] = counts.get(line.split()[1].rstrip(":"), 0) + 1
    # 2 selectors x 2 strategies x 3 rounds was 12 trainings; round 1 is now one per selector.
    assert counts["train_first_selector"] == 2 and counts["train_selector"] == 2 * 2 * 2
    assert counts["score_first_selector"] == 2 and counts["score_selector"] == 2 * 2  # entropy's rounds 2, 3
    # The model a labelling would have trained for itself is the shared one, weight for weight.
    import torch

    seed = round_seed(0, 1)
    own = tmp_path / "own"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    training = json.dumps(TRAINING)
    subprocess.run(
        [sys.executable, "-m", "svp", "train", "--model", "small_cnn", "--training", training, "--seed", str(seed),
         "--data", str(finished / "results/al/data"), "--subset", str(finished / f"{ACTIVE}/start/seed0/pool.parquet"),
         "--model-out", str(own / "model.pt"), "--history-out", str(own / "history.csv"),
         "--metrics-out", str(own / "metrics.json"), "--threads", "1"],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    shared = torch.load(finished / f"{ACTIVE}/start/seed0/selectors/cnn/seed{seed}/model.pt", weights_only=True)
    mine = torch.load(own / "model.pt", weights_only=True)
    assert shared["state_dict"].keys() == mine["state_dict"].keys()
    assert all(torch.equal(shared["state_dict"][k], mine["state_dict"][k]) for k in mine["state_dict"])
    # Both strategies' round-1 pools read that one selector.
    assert read_facts(finished, "cnn-entropy", 1)["scores"] == f"{ACTIVE}/start/seed0/selectors/cnn/seed{seed}/scores.parquet"


def read_facts(workdir: Path, labelling: str, round_: int) -> dict:
    from svp.parquet import read_parquet_metadata

    return read_parquet_metadata(workdir / f"{ACTIVE}/{labelling}/seed0/round{round_}/pool.parquet")


def test_the_report_shows_error_against_budget_selection_time_and_speedup(finished):
    report = finished / "results/al/report/active_learning"
    rounds = pd.read_csv(report / "rounds.csv", keep_default_na=False)
    assert len(rounds) == len(LABELLINGS) * 3
    chosen = rounds[rounds["labelling"] != "random"]
    # kcenter's scoring is the embedding pass its batch job made.
    assert (chosen["selector_seconds"] > 0).all() and (chosen["scoring_seconds"] > 0).all()
    assert np.allclose(rounds["selection_seconds"], rounds["selector_seconds"] + rounds["scoring_seconds"] + rounds["batch_seconds"])
    results = pd.read_csv(report / "results.csv", keep_default_na=False)
    assert set(zip(results["labelling"], results["budget"])) == {(lab, b) for lab in LABELLINGS for b in (0.1, 0.2, 0.3)}
    proxy = results[results["selector_role"] == "proxy"]
    assert set(proxy["labelling"]) == {"cnn-entropy", "cnn-kcenter"}
    assert (proxy["compared_with"] == "net-" + proxy["strategy"]).all() and (proxy["selection_speedup"].astype(float) > 0).all()
    markdown = (report / "results.md").read_text()
    assert "| cnn-entropy | proxy cnn, entropy |" in markdown and "| cnn-kcenter | proxy cnn, kcenter |" in markdown
    assert "<table>" in (report / "results.html").read_text()
    for figure in ("error_vs_budget.png", "selection_time.png"):
        assert (report / figure).stat().st_size > 1000
    assert not list((finished / "results").rglob("*.tmp"))


def test_a_second_run_has_nothing_to_do_and_a_changed_budget_reruns_only_its_round(finished):
    assert "Nothing to be done" in (lambda r: r.stdout + r.stderr)(run(finished))
    changed = json.loads(json.dumps(CONFIG))
    changed["active_learning"]["budgets"][2] = 0.35
    dry = run(finished, "--dry-run", config=changed)
    text = dry.stdout + dry.stderr
    # Round 3's batch and the targets on its pool; its selectors trained on pool 2, which stands.
    assert planned_rules(dry) == {"label_next_batch", "train_active_target", "tabulate_active_learning", "plot_active_learning", "active_learning"}
    outputs = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("output:")]
    pools = sorted(path for path in outputs if path.endswith("pool.parquet"))
    assert pools == [f"{ACTIVE}/{labelling}/seed0/round3/pool.parquet" for labelling in LABELLINGS]


# The proxy's labellings only: each labelling's rounds depend on nothing but its own (and
# the shared start), so its pools must equal those of the full run, at a third of its cost.
PROXY_ONLY = {**CONFIG, "active_learning": {**CONFIG["active_learning"], "selectors": ["cnn"], "random": False}}


def test_a_run_killed_mid_round_resumes_at_the_last_finished_round(finished, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first_round = tmp_path / f"{ACTIVE}/cnn-entropy/seed0/round1/pool.parquet"
    process = subprocess.Popen(
        command(tmp_path, PROXY_ONLY), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes its running jobs too
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not first_round.exists():
        assert process.poll() is None, "the run ended before round 1 finished"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)  # round 2's selector is training now
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / f"{ACTIVE}/cnn-entropy/seed0/round3/pool.parquet").exists()
    finished_before = first_round.stat().st_mtime_ns

    # README, "A killed run leaves a lock": unlock, then rerun the jobs that were running.
    run(tmp_path, "--unlock", config=PROXY_ONLY)
    result = run(tmp_path, "--rerun-incomplete", config=PROXY_ONLY)
    assert first_round.stat().st_mtime_ns == finished_before  # round 1 was not redone
    assert "start_labelled_pool" not in planned_rules(result)
    for labelling in ("cnn-entropy", "cnn-kcenter"):  # and the pools are those of the run that was never killed
        for round_ in (1, 2, 3):
            assert pool(tmp_path, labelling, round_).equals(pool(finished, labelling, round_))
    assert not list((tmp_path / "results").rglob("*.tmp"))
