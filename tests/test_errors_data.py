"""The data rows of README.md's bad-input table: each bad data file or prepared folder
gets a message naming the file (and the row, line or link) and the fix, and the prepare
step writes no manifest. Every case runs the `svp` command a rule would run, on tiny
real files: .npz archives, CSVs, PNGs written by Pillow.
"""

import io
import json
import struct
import zipfile
import zlib
from shutil import rmtree

import numpy as np
import pytest
from PIL import Image

from svp import data
from svp.data import text
from svp.cli import main


def _npz(folder, name, y, x=None):
    path = folder / name
    x = np.zeros((len(y), 8, 8, 1), dtype=np.uint8) if x is None else x
    np.savez(path, x=x, y=np.asarray(y, dtype=np.int64))
    return str(path)


def _prepare(tmp_path, dataset):
    return ["prepare", "--dataset", json.dumps(dataset), "--out-dir", str(tmp_path / "prepared")]


def _npz_data(tmp_path, train, test, **extra):
    return _prepare(
        tmp_path,
        {
            "name": "npz",
            "train": [_npz(tmp_path, "train.npz", train)],
            "test": [_npz(tmp_path, "test.npz", test)],
            **extra,
        },
    )


def _classes_file(tmp_path, names):
    (tmp_path / "classes.txt").write_text("".join(f"{name}\n" for name in names))
    return str(tmp_path / "classes.txt")


def _csv(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("label,text\n" + "".join(f"{label},{words}\n" for label, words in rows))
    return str(path)


def _text_csv(tmp_path, train_rows, test_rows):
    return _prepare(
        tmp_path,
        {
            "name": "text_csv",
            "train": [_csv(tmp_path, "train.csv", train_rows)],
            "test": [_csv(tmp_path, "test.csv", test_rows)],
        },
    )


def _png(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _image_folder(tmp_path, classes=("cat", "dog")):
    """A valid folder: two 8x8 RGB images per class in train/, one in test/."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 2), ("test", 1)):
        for name in classes:
            for index in range(count):
                _png(tmp_path / "images" / split / name / f"{index}.png", rng.integers(0, 256, (8, 8, 3), np.uint8))
    return tmp_path / "images"


def _prepare_images(tmp_path, **extra):
    return _prepare(tmp_path, {"name": "image_folder", "path": str(tmp_path / "images"), **extra})


def _claiming(size, claimed):
    """A real PNG of ``size`` pixels whose header (IHDR, CRC fixed) claims ``claimed``."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((size, size), np.uint8)).save(buffer, "PNG")
    content = bytearray(buffer.getvalue())
    at = content.index(b"IHDR")
    content[at + 4 : at + 12] = struct.pack(">II", claimed, claimed)
    content[at + 17 : at + 21] = struct.pack(">I", zlib.crc32(bytes(content[at : at + 17])))
    return bytes(content)


def _image_case(change):
    def make(tmp_path):
        _image_folder(tmp_path)
        change(tmp_path / "images")
        return _prepare_images(tmp_path)

    return make


def _link_to_test_image(images):
    (images / "train" / "cat" / "borrowed.png").symlink_to(images / "test" / "cat" / "0.png")


def _class_folder_link(images):
    rmtree(images / "train" / "dog")
    (images / "train" / "dog").symlink_to(images / "test" / "dog", target_is_directory=True)


def _nested_folder(images):
    _png(images / "train" / "cat" / "more" / "0.png", np.zeros((8, 8, 3), np.uint8))


def _bomb(images):
    (images / "train" / "dog" / "bomb.png").write_bytes(_claiming(8, 20_000))


def _large(images):
    # 10000 x 10000: more than svp's limit, less than Pillow's own error limit.
    (images / "train" / "dog" / "large.png").write_bytes(_claiming(8, 10_000))


def _truncated(images):
    path = images / "train" / "dog" / "0.png"
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue()[:300])


def _not_an_image(images):
    (images / "train" / "dog" / "0.png").write_bytes(b"<html>not found</html>")


def _sixteen_bit(images):
    _png(images / "test" / "dog" / "0.png", np.full((8, 8), 40_000, np.uint16))


def _unsigned_npz(tmp_path):
    path = tmp_path / "u64.npz"
    np.savez(path, x=np.zeros((2, 8, 8, 1), np.uint8), y=np.array([1, 2**64 - 1], dtype=np.uint64))
    return str(path)


def _huge_npz_header(tmp_path):
    """An .npz whose x header claims 12 TB: numpy would allocate that before reading."""
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("x.npy", "w") as member:
            header = {"descr": "|u1", "fortran_order": False, "shape": (10**9, 64, 64, 3)}
            np.lib.format.write_array_header_1_0(member, header)
            member.write(b"\0" * 100)
        with archive.open("y.npy", "w") as member:
            np.lib.format.write_array(member, np.zeros(3, np.int64))
    return _prepare(tmp_path, {"name": "npz", "train": [str(path)], "test": [str(path)]})


def _long_text(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "MAX_TEXT_CHARACTERS", 1000)
    return _text_csv(tmp_path, [(0, "short"), (1, "x" * 1001), (0, "short")], [(0, "fine")])


def _many_labels(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "MAX_CLASSES", 50)  # the bound name text_csv checks
    return _text_csv(tmp_path, [(f"row{i}", "words") for i in range(60)], [("row0", "words")])


PREPARE_CASES = {
    "stray label": (
        lambda t, m: _npz_data(t, [0, 1, 2, 1, 1000, 0], [0, 1, 2]),
        [
            "config key dataset.train: the training labels skip 3 to 999, so they would make 1,001 classes",
            "the largest, 1,000, first appears at",
            "train.npz, y[4]",
            "name every class in dataset.classes",
        ],
    ),
    "huge label": (
        lambda t, m: _npz_data(t, [0, 1, 10**9], [0, 1]),
        ["train.npz, y[2] (config key dataset.train): label 1,000,000,000 is above 9,999, the largest class number"],
    ),
    "negative label": (
        lambda t, m: _npz_data(t, [0, 1], [1, -1]),
        ["test.npz, y[1] (config key dataset.test): label -1 is negative"],
    ),
    "label beyond the declared classes": (
        lambda t, m: _npz_data(t, [0, 1, 2], [0, 3], classes=_classes_file(t, ["a", "b", "c"])),
        [
            "test.npz, y[1] (config key dataset.test): label 3 is not a class number 0 to 2 of the 3 classes named in",
            "classes.txt (config key dataset.classes)",
        ],
    ),
    "empty split": (
        lambda t, m: _npz_data(t, [0, 1], []),
        ["config key dataset.test: the files hold no examples; the test split needs at least one"],
    ),
    "label beyond int64": (
        lambda t, m: _prepare(t, {"name": "npz", "train": [_npz(t, "ok.npz", [0, 1])], "test": [_unsigned_npz(t)]}),
        ["u64.npz (config key dataset.test): label y[1] is 18,446,744,073,709,551,615; labels are the class numbers"],
    ),
    "crop_padding larger than the images read (npz: their size is known once read)": (
        lambda t, m: _npz_data(t, [0, 1, 0, 1], [0, 1], crop_padding=5),
        ["config key 'dataset.crop_padding': 5 pixels of padding around 8x8 images; a random crop could then show "
         "less than half of the image's height or width (at worst none of it); use at most 4, half the shorter side"],
    ),
    "digits split too small": (
        lambda t, m: _prepare(t, {"name": "digits", "test_fraction": 0.999}),
        ["config key dataset.test_fraction: 0.999 leaves a split too small to hold each of the 10 classes"],
    ),
    "repeated class name": (
        lambda t, m: _npz_data(t, [0, 1, 2], [0], classes=_classes_file(t, ["cat", "dog", "cat"])),
        ["classes.txt (config key dataset.classes): line 3 repeats the class name 'cat' of line 1"],
    ),
    "single class": (
        lambda t, m: _npz_data(t, [0, 0, 0], [0]),
        ["data set 'npz': the training data holds a single class ('0')", "needs at least two classes"],
    ),
    "single class, text": (
        lambda t, m: _text_csv(t, [("pos", "good"), ("pos", "great")], [("pos", "fine")]),
        ["data set 'text_csv': the training data holds a single class ('pos')"],
    ),
    "test label never trained": (
        lambda t, m: _npz_data(t, [0, 1, 0], [1, 2]),
        [
            "test.npz, y[1] (config key dataset.test): label 2 never occurs in the training labels; a model cannot "
            "learn a class it never sees"
        ],
    ),
    "test class never trained, declared classes": (
        lambda t, m: _npz_data(t, [0, 1, 0], [0, 2, 2], classes=_classes_file(t, ["a", "b", "c"])),
        [
            "test.npz, y[1] (config key dataset.test): label 2 (class 'c') never occurs in the training labels",
            "fix the label, add training examples of that class, or remove its test examples",
        ],
    ),
    "test class never trained, text": (
        lambda t, m: _prepare(
            t,
            {
                "name": "text_csv",
                "classes": ["neg", "pos", "mixed"],
                "train": [_csv(t, "train.csv", [("neg", "bad"), ("pos", "good")])],
                "test": [_csv(t, "test.csv", [("pos", "fine"), ("mixed", "meh")])],
            },
        ),
        [
            "data set 'text_csv': the test data holds classes with no training example: 'mixed' (label 2); the first "
            "is test example 1 (0-based, in file order)",
            "add training examples of these classes, or remove them",
        ],
    ),
    "one label spelled two ways": (
        lambda t, m: _text_csv(t, [("1", "good"), ("0", "bad"), ("01", "great")], [("1", "fine")]),
        [
            "train.csv, line 4 (data row 3): label '01' is the same number as label '1' at ",
            "train.csv, line 2 " "(data row 1); they would become two classes. Write each label the same way",
        ],
    ),
    "more labels than classes allowed": (
        _many_labels,
        ["config key dataset.label_column: the training files hold 60 distinct labels, more than the 50 classes"],
    ),
    "text longer than the limit": (
        _long_text,
        ["train.csv, line 3: a field longer than 1,000 characters, the longest text svp reads"],
    ),
    "npz header claiming terabytes": (
        lambda t, m: _huge_npz_header(t),
        ["huge.npz (config key dataset.train): its arrays do not fit in memory"],
    ),
    "link out of the folder": (
        lambda t, m: _image_case(_link_to_test_image)(t),
        ["train/cat/borrowed.png: a symbolic link that leads outside", "test/cat/0.png", "remove it"],
    ),
    "class folder linked out of the folder": (
        lambda t, m: _image_case(_class_folder_link)(t),
        ["images/train/dog: a symbolic link that leads outside", "(to ", "images/test/dog)"],
    ),
    "nested folder": (
        lambda t, m: _image_case(_nested_folder)(t),
        ["train/cat/more: a folder inside the class folder", "move them up, or delete the folder"],
    ),
    "decompression bomb": (
        lambda t, m: _image_case(_bomb)(t),
        [
            "train/dog/bomb.png: Pillow refuses it as a possible decompression bomb (Image size (400000000 pixels)",
            "svp reads images of at most 67,108,864 pixels (8192x8192): downscale it, or remove it",
        ],
    ),
    "image above the size limit": (
        lambda t, m: _image_case(_large)(t),
        ["train/dog/large.png: its header claims 10000x10000 pixels; svp reads images of at most 67,108,864"],
    ),
    "truncated image": (
        lambda t, m: _image_case(_truncated)(t),
        [
            "train/dog/0.png: cannot read this image (image file is truncated",
            "the file is damaged: replace or remove it",
        ],
    ),
    "not an image": (
        lambda t, m: _image_case(_not_an_image)(t),
        ["train/dog/0.png: not an image Pillow can read (unknown format, or corrupt); replace or remove it"],
    ),
    "16-bit image": (
        lambda t, m: _image_case(_sixteen_bit)(t),
        [
            "test/dog/0.png: an image in Pillow mode I;16 (16-bit or floating-point pixels)",
            "save it with 8 bits per channel",
        ],
    ),
    "image size above the limit": (
        lambda t, m: (_image_folder(t), _prepare_images(t, image_size=10_000))[1],
        ["config key dataset.image_size: 10000 is above 8192, the largest image side svp reads"],
    ),
}


def _run(arguments, capsys):
    capsys.readouterr()
    status = main(arguments)
    captured = capsys.readouterr()
    return status, captured.err


@pytest.mark.parametrize("case", PREPARE_CASES, ids=list(PREPARE_CASES))
def test_bad_data_gets_a_message_naming_the_file(case, tmp_path, capsys, monkeypatch):
    make_arguments, expected = PREPARE_CASES[case]
    arguments = make_arguments(tmp_path, monkeypatch)
    status, message = _run(arguments, capsys)
    assert status == 2, message
    assert message.startswith("svp prepare: error: ") and "Traceback" not in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert not (tmp_path / "prepared" / "manifest.json").exists()


def test_the_same_files_without_the_fault_prepare(tmp_path, capsys):
    """The cases above fail because of their one fault: the folder and CSVs they start from are fine."""
    _image_folder(tmp_path)
    assert _run(_prepare_images(tmp_path), capsys)[0] == 0
    assert _run(_text_csv(tmp_path / "", [("1", "good"), ("0", "bad")], [("1", "fine")]), capsys)[0] == 0
    assert _run(_npz_data(tmp_path, [0, 1, 2, 1], [0, 1, 2]), capsys)[0] == 0


def test_a_link_inside_the_folder_is_read(tmp_path, capsys):
    images = _image_folder(tmp_path)
    (images / "train" / "cat" / "again.png").symlink_to(images / "train" / "dog" / "0.png")
    assert _run(_prepare_images(tmp_path), capsys)[0] == 0
    (_, y_train), _, _ = data.load_prepared(tmp_path / "prepared")
    assert y_train.tolist() == [0, 0, 0, 1, 1]


def test_declared_class_without_examples_is_a_warning(tmp_path, capsys):
    arguments = _npz_data(tmp_path, [0, 1, 0], [0, 1], classes=_classes_file(tmp_path, ["a", "b", "unused"]))
    status, message = _run(arguments, capsys)
    assert status == 0
    assert "warning: data set 'npz': 1 declared class(es) have no example at all ('unused')" in message
    assert json.loads((tmp_path / "prepared" / "manifest.json").read_text())["num_classes"] == 3


# --------------------------------------------------------------------------- prepared data, edited


@pytest.fixture
def prepared(tmp_path, capsys):
    """A prepared folder of 3 classes, 6 training and 3 test images of 8x8x1."""
    x = np.arange(6 * 64, dtype=np.uint8).reshape(6, 8, 8, 1)
    train = _npz(tmp_path, "train.npz", [0, 1, 2, 0, 1, 2], x)
    test = _npz(tmp_path, "test.npz", [0, 1, 2], x[:3])
    out = tmp_path / "prepared"
    assert (
        main(
            [
                "prepare",
                "--dataset",
                json.dumps({"name": "npz", "train": [train], "test": [test]}),
                "--out-dir",
                str(out),
            ]
        )
        == 0
    )
    return out


def _edit(folder, change):
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def _set(key, value):
    return lambda manifest: manifest.__setitem__(key, value)


def _fewer_classes(manifest):
    manifest["classes"], manifest["num_classes"] = ["0", "1"], 2
    manifest["counts"] = {split: {"0": 1, "1": 1} for split in ("train", "test")}


EDITS = {
    "fewer classes": (_fewer_classes, "counts.train add up to 2, not n_train = 6"),
    "fewer classes, counts adjusted": (
        lambda m: (_fewer_classes(m), m.update(n_train=2, n_test=2)),
        "it says 2 train examples, train.npz holds 6; it says 2 classes, but train.npz has labels 0 to 2",
    ),
    "num_classes disagrees": (_set("num_classes", 5), "num_classes is 5 but classes names 3"),
    "num_classes a float": (_set("num_classes", 3.0), "num_classes: 3.0 is not of type 'integer'"),
    "mean out of range": (_set("mean", [1000]), "mean.0: 1000 is greater than the maximum of 1"),
    "NaN std": (_set("std", [float("nan")]), "NaN is not a number JSON allows"),
    "counts": (
        lambda m: m["counts"]["train"].update({"0": 3, "1": 1}),
        "its counts of train examples per class differ from the labels in train.npz",
    ),
    "not an object": (lambda m: m.clear(), "keys ['classes', 'num_classes', 'checksums', 'image_shape', "),
    # What only a stage that reads the images needs: select (labels only) does not look.
    "image shape": (_set("image_shape", [4, 4, 1]), "it says images of shape [4, 4, 1], train.npz holds [8, 8, 1]"),
    "checksum removed": (lambda m: m["checksums"].pop("test.npz"), "checksums of ['test.npz'] missing"),
    # As an svp that did not bound the padding prepared it: training reached 92.67 % test error.
    "crop padding over half the image": (
        lambda m: m["augment"].update(crop_padding=1000),
        "the data was prepared with a padding its images cannot take (config key 'dataset.crop_padding': 1000 "
        "pixels of padding around 8x8 images;",
    ),
}
IMAGES_ONLY = {"image shape", "checksum removed"}


@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
def test_edited_manifest_is_refused_when_read(edit, prepared, capsys):
    change, expected = EDITS[edit]
    _edit(prepared, change)
    out = prepared.parent
    # score reads everything (before the checkpoint, which does not exist); select only the labels.
    commands = [
        ["score", "--checkpoint", str(out / "model.pt"), "--data", str(prepared), "--out", str(out / "s.parquet")]
    ]
    if edit not in IMAGES_ONLY:
        commands.append(
            [
                "select",
                "--random-seed",
                "0",
                "--data",
                str(prepared),
                "--fraction",
                "0.5",
                "--out",
                str(out / "subset.parquet"),
            ]
        )
    for arguments in commands:
        status, message = _run(arguments, capsys)
        assert status == 2, message
        assert (
            message.startswith(f"svp {arguments[0]}: error: {prepared / 'manifest.json'}")
            and "Traceback" not in message
        )
        assert "rerun the prepare step" in message
        # select reads no images, so it stops at the first problem with the labels.
        assert (expected if arguments[0] == "score" else expected.split("; ")[-1]) in message, message
    assert not (out / "subset.parquet").exists() and not (out / "s.parquet").exists()


def test_unedited_manifest_loads(prepared):
    (x_train, y_train), (x_test, y_test), manifest = data.load_prepared(prepared)
    assert x_train.shape == (6, 8, 8, 1) and y_test.tolist() == [0, 1, 2] and manifest["num_classes"] == 3
    assert data.load_labels(prepared).tolist() == [0, 1, 2, 0, 1, 2]


# --------------------------------------------------------------------------- parquet facts


def test_parquet_facts_of_a_foreign_or_broken_file_name_it(tmp_path):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from svp.errors import StageInputError
    from svp.parquet import read_parquet_metadata, write_parquet

    write_parquet(pd.DataFrame({"index": [0, 1]}), tmp_path / "facts.parquet", {"seed": 3})
    assert read_parquet_metadata(tmp_path / "facts.parquet") == {"seed": 3}
    write_parquet(pd.DataFrame({"index": [0, 1]}), tmp_path / "bare.parquet")
    assert read_parquet_metadata(tmp_path / "bare.parquet") == {}  # callers decide what a missing fact means
    table = pa.table({"index": [0, 1]}).replace_schema_metadata({b"svp": b"{not json"})
    pq.write_table(table, tmp_path / "broken.parquet")
    (tmp_path / "text.parquet").write_text("index\n0\n1\n")
    for name, message in [
        ("broken.parquet", "its svp facts are not valid JSON"),
        ("text.parquet", "not a readable parquet file"),
        ("nope.parquet", "missing"),
    ]:
        with pytest.raises(StageInputError) as error:
            read_parquet_metadata(tmp_path / name)
        assert str(error.value).startswith(f"{tmp_path / name}: {message}")
        assert "rerun the stage that writes it" in str(error.value)
