"""The selection methods' registry is the one list: the schema, the command line, the
active-learning strategies and the trainers' support all agree with it."""

import argparse

import pytest

from svp.active import rounds
from svp.cli import build_parser
from svp.schema import load_schema
from svp.selection.methods import METHODS, REGISTRY, SELECTION_METRICS, MethodInputs, SelectionMethod, register_method
from svp.selection.uncertainty import METRICS
from svp.trainers import EMBEDDINGS, FASTTEXT, GRADIENTS, PROBABILITIES, TORCH, TRAINING_DYNAMICS


def test_the_schema_takes_every_registered_method_and_no_other():
    schema = load_schema()
    metrics = schema["properties"]["selection"]["properties"]["metrics"]["items"]["enum"]
    assert metrics == list(SELECTION_METRICS)
    strategies = schema["properties"]["active_learning"]["properties"]["strategies"]["items"]["enum"]
    assert strategies == list(rounds.STRATEGIES)


def test_the_score_method_command_offers_the_methods_with_a_file_of_their_own():
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    method = next(a for a in commands.choices["score-method"]._actions if a.dest == "method")
    assert list(method.choices) == list(METHODS)


def test_each_entry_says_what_it_needs_and_which_trainers_give_it():
    assert list(SELECTION_METRICS[: len(METRICS)]) == list(METRICS)
    assert {name: REGISTRY[name].needs for name in METHODS} == {
        "forgetting": TRAINING_DYNAMICS, "grand": GRADIENTS, "kcenter": EMBEDDINGS,
    }  # fmt: skip
    assert all(REGISTRY[name].needs == PROBABILITIES and REGISTRY[name].score is None for name in METRICS)
    # fastText trains in one library call: no forgetting counts, no gradients; its sentence vectors embed.
    assert REGISTRY["forgetting"].trainers == REGISTRY["grand"].trainers == (TORCH.name,)
    assert REGISTRY["kcenter"].trainers == (TORCH.name, FASTTEXT.name)
    # Strategies read no label of the examples they choose among.
    assert rounds.STRATEGIES == ("least_confidence", "margin", "entropy", "kcenter")
    assert not REGISTRY["el2n"].label_free


def test_a_method_scores_into_the_columns_it_declares():
    import numpy as np

    counts = {"events": [0, 2, 1], "ever_correct": [True, True, False], "presentations": [4, 4, 4], "epochs": 4}
    embedded = np.array([[0.0], [1.0], [5.0]])
    given = {"forgetting": counts, "grand": np.array([0.5, 1.0, 0.0]), "kcenter": embedded}
    for name in METHODS:
        columns = REGISTRY[name].score(MethodInputs(given[name], 3, seed=0, path="model.pt"))
        assert tuple(columns) == REGISTRY[name].columns and all(len(v) == 3 for v in columns.values())
    forgetting = REGISTRY["forgetting"].score(MethodInputs(counts, 3, seed=0, path="model.pt"))
    assert forgetting["forgetting"].tolist() == [0.0, 2.0, 4.0]  # never learned: the epochs, above any count


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        register_method(SelectionMethod("entropy", PROBABILITIES, ("entropy",)))
