"""Training length on subsets: epochs (SVP's protocol) or steps (the full-data run's
optimizer steps, the learning-rate schedule stretched to match)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from svp import plan
from svp.config import validate_config
from svp.errors import ConfigError
from svp.trainers.fasttext_trainer import FastTextSettings
from svp.models.networks import create_model
from svp.report.summary import summarize
from svp.training import loop
from svp.training.forgetting import ForgettingTracker
from svp.training.loop import ImageData, StepPlan, TrainingSettings

SCHEDULE = [{"epochs": 2, "lr": 0.1}, {"epochs": 1, "lr": 0.01}]


def test_step_plan_matches_the_full_data_run():
    # 1,000 examples, batches of 100: the full-data run takes 10 steps an epoch, 30 in all,
    # at 0.1 for steps 0-19 and 0.01 for 20-29.
    full = StepPlan.of(TrainingSettings(lr_schedule=SCHEDULE, batch_size=100), 1000, 1000)
    assert (full.total_steps, full.boundaries, full.passes) == (30, (20, 30), 3)
    epochs = StepPlan.of(TrainingSettings(lr_schedule=SCHEDULE, batch_size=100), 1000, 300)
    assert (epochs.total_steps, epochs.boundaries, epochs.passes) == (9, (6, 9), 3)  # 3 batches a pass
    steps = StepPlan.of(TrainingSettings(lr_schedule=SCHEDULE, batch_size=100, length="steps"), 1000, 350)
    # 4 batches a pass (the last of 50): 8 passes for 30 steps, the last one of 2 batches.
    assert (steps.total_steps, steps.boundaries, steps.passes) == (30, (20, 30), 8)
    assert [steps.batches_in_pass(p) for p in range(8)] == [4] * 7 + [2]
    assert [steps.lr_at_step(s) for s in (0, 19, 20, 29)] == [0.1, 0.1, 0.01, 0.01]
    with pytest.raises(IndexError):
        steps.lr_at_step(30)
    # On the whole training set both lengths are the same run.
    assert StepPlan.of(TrainingSettings(lr_schedule=SCHEDULE, batch_size=100, length="steps"), 1000, 1000) == full


def _toy_data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.integers(0, 256, (n, 8, 8, 1)).astype(np.uint8)
    return ImageData.from_arrays(x, y, [0.3], [0.3], torch.device("cpu"))


def _train(length, monkeypatch, subset=15):
    """Train on ``subset`` of 50 toy examples; the rate of every optimizer step the loop takes, and the history."""
    rates = []
    real_sgd = loop.sgd

    def recording_sgd(model, settings):
        optimizer, step = real_sgd(model, settings)

        def recorded_step():
            rates.append(optimizer.param_groups[0]["lr"])
            step()

        return optimizer, recorded_step

    monkeypatch.setattr(loop, "sgd", recording_sgd)
    data = _toy_data()
    settings = TrainingSettings(
        lr_schedule=[{"epochs": 1, "lr": 0.05}, {"epochs": 1, "lr": 0.005}], batch_size=8, eval_every=0, length=length
    )
    torch.manual_seed(0)
    model = create_model("small_cnn", 3, 1)
    forgetting = ForgettingTracker(len(data), torch.device("cpu"))
    history = loop.train(model, data, torch.arange(subset), settings, {}, 0, log=lambda _: None, forgetting=forgetting)
    return rates, history, int(forgetting.presentations.sum())


def test_steps_train_a_subset_for_the_full_data_runs_steps_with_its_schedule_stretched(monkeypatch):
    # 50 examples in batches of 8: 7 steps an epoch, 14 for the 2-epoch schedule, the rate
    # dropping at step 7. A subset of 15 (2 batches a pass) takes 7 passes.
    rates, history, presented = _train("steps", monkeypatch)
    assert rates == [0.05] * 7 + [0.005] * 7  # the schedule's end where the full-data run's is
    assert len(history) == 7 and history[-1]["steps"] == 14
    assert presented == 7 * 15  # every pass the whole subset: 8 + 7 examples
    assert [row["lr"] for row in history] == [0.05] * 4 + [0.005] * 3  # rate at each pass's start


def test_epochs_train_a_subset_for_the_schedules_passes_as_before(monkeypatch):
    rates, history, presented = _train("epochs", monkeypatch)
    assert rates == [0.05, 0.05, 0.005, 0.005]  # 2 passes of 2 batches
    assert len(history) == 2 and history[-1]["steps"] == 4 and presented == 2 * 15


def test_steps_stop_part_way_through_the_last_pass(monkeypatch):
    # A subset of 40: 5 batches a pass; 14 steps are 2 passes and 4 batches of a third.
    rates, history, presented = _train("steps", monkeypatch, subset=40)
    assert len(rates) == 14 and rates[6] == 0.05 and rates[7] == 0.005
    assert [row["steps"] for row in history] == [5, 10, 14]
    assert presented == 2 * 40 + 4 * 8


def test_fasttext_steps_run_as_many_updates_as_on_all_the_data():
    settings = FastTextSettings(epochs=5, lr=0.05, length="steps")
    assert settings.run_epochs(1000, 300) == 17  # 5 x 1000 / 300 = 16.7 passes
    assert settings.run_epochs(1000, 1000) == 5
    assert FastTextSettings(epochs=5, lr=0.05).run_epochs(1000, 300) == 5


def _config(length=None, budget=True):
    training = {"lr_schedule": [{"epochs": 2, "lr": 0.05}], **({"length": length} if length else {})}
    return validate_config(
        {
            "experiment": "l",
            "dataset": {"name": "digits"},
            "proxies": {"cnn": {"model": "small_cnn"}},
            "targets": {"net": {"model": "small_cnn", "training": {"lr_schedule": [{"epochs": 2, "lr": 0.05}]}},
                        "net_steps": {"model": "small_cnn", "training": training}},
            "selection": {"metrics": ["entropy"], "fractions": [0.5, 1.0]},
            "report": {"budget_matched": budget},
        }
    )


def test_config_takes_the_length_per_target_and_steps_targets_need_no_budget_runs():
    config = _config("steps")
    assert config["targets"]["net_steps"]["training"]["length"] == "steps"
    assert "length" not in config["targets"]["net"]["training"]  # left out: resolves as before
    assert {run["target"] for run in plan.budget_runs(config)} == {"net"}
    with pytest.raises(ConfigError, match=r"config key 'targets.net_steps.training.length': 'iterations' is not allowed; allowed values: \['epochs', 'steps'\]"):
        _config("iterations")


def test_the_results_table_says_which_length_each_row_used_and_counts_its_time():
    targets = pd.DataFrame([
        {"target": "net", "selection": "full", "fraction": 1.0, "seed": 0, "test_error": 5.0, "seconds": 100.0},
        {"target": "net", "selection": "random", "fraction": 0.5, "seed": 0, "test_error": 9.0, "seconds": 50.0, "training_length": "epochs"},
        {"target": "net_steps", "selection": "full", "fraction": 1.0, "seed": 0, "test_error": 5.0, "seconds": 100.0, "training_length": "steps"},
        {"target": "net_steps", "selection": "random", "fraction": 0.5, "seed": 0, "test_error": 7.0, "seconds": 104.0, "training_length": "steps"},
    ])
    proxies = pd.DataFrame(columns=["proxy", "seed", "seconds"])
    scoring = pd.DataFrame(columns=["proxy", "seed", "scoring_seconds"])
    summary = summarize(targets, proxies, scoring).set_index(["target", "selection"])
    assert summary.loc[("net", "full"), "training_length"] == "epochs"  # a run from before lengths existed
    assert summary.loc[("net_steps", "random"), "training_length"] == "steps"
    assert summary.loc[("net", "random"), "speedup"] == pytest.approx(2.0)
    assert summary.loc[("net_steps", "random"), "speedup"] == pytest.approx(100.0 / 104.0)  # steps cost what they cost
    assert not math.isnan(summary.loc[("net_steps", "random"), "error_mean"])
