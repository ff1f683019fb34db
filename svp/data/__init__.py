"""Data sets: each prepared once into one on-disk form that every stage reads.

- ``registry``: data set names, their builders and modality, the limits on input, and
  the option and raw-file helpers builders share;
- ``images`` and ``text``: the builders (digits, npz, image_folder, torchvision's;
  text_csv and the Amazon reviews), each registered under its name;
- ``disk``: image data sets read from disk as they train (imagenet, a large image_folder),
  prepared into lists of files, labels and sizes;
- ``encoding``: packed texts and how models read them (characters, fastText words);
- ``store``: writing a prepared folder and reading it back, checked against its manifest;
- ``validation``: the seeded, class-stratified validation split (``dataset.validation``)
  held out of the training set as it is prepared.

Every problem a user can cause or fix raises :class:`svp.errors.DataError`, whose
message names the config key or file (and the row) and the fix. Labels are class
numbers: every class needs a training example, and there must be at least two.
"""

from svp.data import disk, images, text  # noqa: F401  (each registers its data sets)
from svp.data.registry import (
    DATASETS,
    MAX_CLASSES,
    PreparedData,
    config_rules,
    dataset_modality,
    image_option_problem,
    is_file,
    known_image_shape,
    list_datasets,
    register_dataset,
    unread_key_problem,
)
from svp.data.store import load_labels, load_prepared, load_validation, prepare_dataset, read_manifest
from svp.errors import DataError

__all__ = [
    "DATASETS",
    "MAX_CLASSES",
    "DataError",
    "PreparedData",
    "config_rules",
    "dataset_modality",
    "image_option_problem",
    "is_file",
    "known_image_shape",
    "list_datasets",
    "load_labels",
    "load_prepared",
    "load_validation",
    "prepare_dataset",
    "read_manifest",
    "register_dataset",
    "unread_key_problem",
]
