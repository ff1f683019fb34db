"""Text data: character encoding, packed texts, VDCNN shapes, and the text data sets on
real files (IMDB from ../shared/data) and on bad input."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from svp import data
from svp import trainers
from svp.models import networks, specs
from svp.data import text
from svp.data import DataError, load_prepared, prepare_dataset
from svp.data.encoding import ALPHABET, PAD, UNKNOWN, VOCAB_SIZE, TextArray, encode_characters, fasttext_normalize
from svp.training.loop import TextData
from svp.models.vdcnn import MIN_LENGTH, VDCNN

IMDB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imdb"
needs_imdb = pytest.mark.shared_data(IMDB / "train.csv.gz", IMDB / "test.csv.gz")


def code(character: str) -> int:
    return ALPHABET.index(character) + 2


# --------------------------------------------------------------------------- encoding


def test_alphabet_is_the_papers_seventy_characters():
    assert len(ALPHABET) == len(set(ALPHABET)) == 70
    assert VOCAB_SIZE == 72 and PAD == 0 and UNKNOWN == 1
    assert set("abcdefghijklmnopqrstuvwxyz0123456789 \n") <= set(ALPHABET)
    assert not set("ABCXYZ") & set(ALPHABET)


def test_encoding_lowercases_pads_truncates_and_marks_unknown():
    texts = TextArray.from_strings(["Ab c!", "x" * 20, "é€a", ""])
    codes = encode_characters(texts, length=8)
    assert codes.shape == (4, 8) and codes.dtype == np.uint8
    assert codes[0].tolist() == [code("a"), code("b"), code(" "), code("c"), code("!"), PAD, PAD, PAD]
    assert codes[1].tolist() == [code("x")] * 8  # cut after 8 characters
    # A character outside the alphabet is one unknown code however many UTF-8 bytes it takes.
    assert codes[2].tolist() == [UNKNOWN, UNKNOWN, code("a")] + [PAD] * 5
    assert codes[3].tolist() == [PAD] * 8


def test_encoding_in_chunks_equals_one_pass():
    rng = np.random.default_rng(0)
    pieces = ["Zürich", "naïve café", "plain", "ünï", "x"]
    strings = [" ".join(rng.choice(pieces, rng.integers(1, 30))) for _ in range(50)]
    texts = TextArray.from_strings(strings)
    whole = encode_characters(texts, 64)
    np.testing.assert_array_equal(encode_characters(texts, 64, chunk=7), whole)
    for row, string in zip(whole, strings):
        expected = [ALPHABET.index(c) + 2 if c in ALPHABET else UNKNOWN for c in string.lower()[:64]]
        assert row[: len(expected)].tolist() == expected and not row[len(expected):].any()


def test_text_array_round_trip():
    strings = ["first", "", "ünïcode ✓", "last"]
    texts = TextArray.from_strings(strings)
    assert len(texts) == 4 and texts.data.dtype == np.uint8 and texts.offsets.dtype == np.int64
    assert texts.strings() == strings and texts[2] == "ünïcode ✓"
    assert texts.strings([3, 0]) == ["last", "first"]
    assert texts.character_counts().tolist() == [5, 0, 9, 4]


def test_fasttext_normalisation_follows_the_authors_sed_script():
    assert fasttext_normalize('He said "Great",  (really)!<br />Wow... it\'s:ok;\nyes?') == (
        "he said great , ( really ) ! wow . . . it ' s ok yes ?"
    )


def test_text_data_batches_character_codes():
    texts = TextArray.from_strings(["abc", "de"])
    batch = TextData.from_texts(texts, np.array([1, 0]), 4, torch.device("cpu"))
    assert batch.in_channels == VOCAB_SIZE and len(batch) == 2
    characters, labels = batch.batch(torch.tensor([1]))
    assert characters.dtype == torch.int64 and characters.tolist() == [[code("d"), code("e"), 0, 0]]
    assert labels.tolist() == [0]


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize("depth", [9, 17, 29, 49])
def test_vdcnn_output_shape_for_every_depth(depth):
    torch.manual_seed(0)
    model = networks.create_model(f"vdcnn{depth}", num_classes=5, in_channels=VOCAB_SIZE).eval()
    with torch.no_grad():
        logits = model(torch.randint(0, VOCAB_SIZE, (2, 1014)))
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    convolutions = sum(isinstance(m, torch.nn.Conv1d) for m in model.modules())
    assert convolutions == depth  # the depth counts the temporal convolutions


def test_vdcnn_shortcuts_short_inputs_and_padding():
    model = VDCNN(9, 3, VOCAB_SIZE, shortcut=True).eval()
    with torch.no_grad():
        assert model(torch.randint(0, VOCAB_SIZE, (2, MIN_LENGTH))).shape == (2, 3)
    with pytest.raises(ValueError, match="length"):
        model(torch.zeros(2, MIN_LENGTH - 1, dtype=torch.long))
    assert not model.embedding.weight[0].any()  # padding embeds to zero


def test_text_models_are_registered_with_their_authors_settings():
    for depth in (9, 17, 29, 49):
        spec = specs.model_spec(f"vdcnn{depth}")
        assert spec.modality == "text" and spec.trainer is trainers.TORCH
        assert "text_length" in spec.settings
    defaults = specs.training_defaults("vdcnn29")
    assert [p["lr"] for p in defaults["lr_schedule"]] == [0.01, 0.005, 0.0025, 0.00125, 0.000625]
    assert {p["epochs"] for p in defaults["lr_schedule"]} == {3}
    assert defaults["batch_size"] == 128 and defaults["weight_decay"] == 1e-4 and defaults["text_length"] == 1014
    assert specs.model_spec("fasttext").trainer is trainers.FASTTEXT
    assert specs.model_spec("fasttext").settings == ("lr_schedule", "fasttext", "length")
    assert specs.training_defaults("fasttext")["lr_schedule"] == [{"epochs": 5, "lr": 0.05}]
    assert specs.model_spec("preact_resnet20").modality == "image"
    assert "text_length" not in specs.model_spec("preact_resnet20").settings
    with pytest.raises(ValueError, match="not a torch module"):
        networks.create_model("fasttext", num_classes=2)


# --------------------------------------------------------------------------- text_csv on real data


def read_imdb_rows(path: Path, n: int) -> list[tuple[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader) == ["label", "text"]
        return [tuple(row) for _, row in zip(range(n), reader)]


@needs_imdb
def test_text_csv_prepares_a_real_imdb_slice(tmp_path):
    options = {
        "name": "text_csv",
        "train": [str(IMDB / "train.csv.gz")],
        "test": [str(IMDB / "test.csv.gz")],
        "classes": {0: "negative", 1: "positive"},
        "train_rows": 300,
        "test_rows": 100,
    }
    manifest = prepare_dataset(options, tmp_path / "a")
    (texts, y), (test_texts, test_y), loaded = load_prepared(tmp_path / "a")
    assert loaded == manifest and manifest["modality"] == "text"
    assert manifest["classes"] == ["negative", "positive"] and manifest["n_train"] == 300 and manifest["n_test"] == 100
    assert sum(manifest["counts"]["train"].values()) == 300
    rows = read_imdb_rows(IMDB / "train.csv.gz", 300)
    assert texts.strings() == [t for _, t in rows]
    np.testing.assert_array_equal(y, [int(label) for label, _ in rows])
    assert len(test_texts) == 100 and test_y.dtype == np.int64
    with np.load(tmp_path / "a" / "train.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == ["offsets", "text", "y"] and archive["text"].dtype == np.uint8
    assert str(IMDB / "train.csv.gz") in manifest["source_files"]
    assert manifest["characters"]["train_mean"] > 100
    # Byte-for-byte reproducible, and the default classes are the sorted label values.
    again = prepare_dataset({**options, "classes": None}, tmp_path / "b")
    assert again["checksums"] == manifest["checksums"] and again["classes"] == ["0", "1"]


def write_csv(path: Path, rows: list[list[str]], header=("label", "text")) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        handle.write(buffer.getvalue())
    return path


def test_text_csv_string_labels_columns_and_gzip(tmp_path):
    train = write_csv(tmp_path / "train.csv.gz", [["pos", "fine", "x"], ["neg", "bad", "y"], ["pos", "ok", "z"]],
                      header=("sentiment", "body", "extra"))
    test = write_csv(tmp_path / "test.csv", [["neg", "meh", "w"]], header=("sentiment", "body", "extra"))
    options = {"name": "text_csv", "train": [str(train)], "test": [str(test)], "label_column": "sentiment",
               "text_column": ["body", "extra"]}
    manifest = prepare_dataset(options, tmp_path / "out")
    (texts, y), _, _ = load_prepared(tmp_path / "out")
    assert manifest["classes"] == ["neg", "pos"] and y.tolist() == [1, 0, 1]
    assert texts.strings() == ["fine x", "bad y", "ok z"]
    numbers = write_csv(tmp_path / "n.csv", [["10", "a"], ["9", "b"], ["2", "c"]])
    manifest = prepare_dataset({"name": "text_csv", "train": [str(numbers)], "test": [str(numbers)]}, tmp_path / "n")
    assert manifest["classes"] == ["2", "9", "10"]  # integers sort numerically


# --------------------------------------------------------------------------- bad input


BAD_INPUT = {
    "empty text": ([["0", "fine"], ["1", "   "]], None, r"bad\.csv, line 3 \(data row 2\): the text is empty"),
    "unknown label": ([["0", "fine"], ["2", "text"]], [0, 1], r"bad\.csv, line 3 \(data row 2\): label '2' is not one of"),
    "short row": ([["0", "fine"], ["1"]], None, r"bad\.csv, line 3 \(data row 2\): malformed row with 1 fields, expected 2"),
    "long row": ([["0", "a", "b"]], None, r"bad\.csv, line 2 \(data row 1\): malformed row with 3 fields"),
}


@pytest.mark.parametrize("case", BAD_INPUT, ids=list(BAD_INPUT))
def test_bad_rows_stop_with_file_and_line_and_write_nothing(tmp_path, case):
    rows, classes, message = BAD_INPUT[case]
    bad = write_csv(tmp_path / "bad.csv", rows)
    good = write_csv(tmp_path / "good.csv", [["0", "fine"], ["1", "also fine"]])
    options = {"name": "text_csv", "train": [str(good)], "test": [str(bad)]}
    if classes:
        options["classes"] = classes
    out = tmp_path / "out"
    with pytest.raises(DataError, match=message):
        prepare_dataset(options, out)
    assert not out.exists()


def test_broken_csv_encoding_and_columns_are_reported(tmp_path):
    good = write_csv(tmp_path / "good.csv", [["0", "fine"]])
    quote = tmp_path / "quote.csv"
    quote.write_text('label,text\n0,"fine"\n1,"never closed\n')
    with pytest.raises(DataError, match=r"quote\.csv, line \d+: malformed CSV"):
        prepare_dataset({"name": "text_csv", "train": [str(quote)], "test": [str(good)]}, tmp_path / "o")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("label,text\n0,café\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv.*not valid UTF-8"):
        prepare_dataset({"name": "text_csv", "train": [str(latin)], "test": [str(good)]}, tmp_path / "o")
    with pytest.raises(DataError, match=r"good\.csv.*dataset\.text_column.*no column named 'body'"):
        prepare_dataset({"name": "text_csv", "train": [str(good)], "test": [str(good)], "text_column": "body"}, tmp_path / "o")
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(gzip.compress(b"label,text\n0,fine\n1,more\n" * 100)[:-20])
    with pytest.raises(DataError, match=r"cut\.csv\.gz: truncated or corrupt gzip"):
        prepare_dataset({"name": "text_csv", "train": [str(truncated)], "test": [str(good)]}, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_registry_has_the_text_data_sets():
    assert {"amazon_polarity", "amazon_full", "text_csv"} <= set(data.list_datasets())
    assert {data.dataset_modality(n) for n in ("amazon_polarity", "amazon_full", "text_csv")} == {"text"}
    assert data.dataset_modality("cifar10") == "image"
    assert text.AMAZON["amazon_polarity"].rows == {"train": 3_600_000, "test": 400_000}


def test_taking_texts_by_index_copies_their_bytes_a_block_of_rows_at_a_time():
    strings = ["ab", "", "é€", "xyz", "q", "é"]
    texts = TextArray.from_strings(strings)
    for index in ([5, 0, 2, 2, 1], [], [3], list(range(6))[::-1]):
        for rows_at_once in (1, 2, 4, 1 << 16):
            taken = texts.take(index, rows_at_once=rows_at_once)
            assert taken.strings() == [strings[i] for i in index] and taken.offsets.dtype == np.int64
