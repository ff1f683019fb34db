"""Validate an experiment's config before any job runs, and fill in the defaults.

The JSON schema (workflow/schemas/config.schema.yaml) describes and documents every
key; this module applies it with messages that name the offending key and the allowed
values, then checks what a schema cannot know: the registered data sets and models,
whether each model reads the data set's modality (images or texts), the training keys
that only some models take, and the input files the chosen data set needs.

A run's ``training`` mapping is completed in two steps: first from the model's own
defaults in the model registry (its authors' settings, e.g. VDCNN's Amazon schedule or
fastText's), then from the schema's generic defaults.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path

import yaml

# The model specs, not svp.models: validating a config never imports torch.
from svp import data
from svp import model_specs as models
from svp.errors import ConfigError  # noqa: F401  (callers import it from here too)

# libyaml's safe loader where PyYAML has it: 10x faster than the pure-Python one.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def _with_defaults(validator_class):
    """A validator that fills each missing property from its schema ``default``."""
    import jsonschema  # here: every svp command imports ConfigError, few validate

    validate_properties = validator_class.VALIDATORS["properties"]

    def fill_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": fill_defaults})


def key_path(parts: Iterable) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _describe(error) -> str:
    """One line for a ``jsonschema.ValidationError``."""
    where = key_path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        keys = ", ".join(f"'{key_path([*error.absolute_path, k])}'" for k in unknown)
        return f"unknown config key {keys}; allowed keys here: {', '.join(allowed)}"
    if error.validator == "enum":
        return f"config key '{where}': {error.instance!r} is not allowed; allowed values: {error.validator_value}"
    if error.validator == "required":
        return f"config key '{where}': {error.message}"
    return f"config key '{where}': {error.message}"


def validate_config(config: dict, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Return a copy of ``config`` with defaults filled in, or raise ConfigError."""
    import jsonschema

    schema = yaml.load(Path(schema_path).read_text(), Loader=SAFE_LOADER)
    validator = _with_defaults(jsonschema.validators.validator_for(schema))(schema)
    resolved = _resolve(validator, config)
    _check_registered_names(resolved)
    # Now that the model names are known good: the models' own training defaults first.
    resolved = _resolve(validator, _with_model_training_defaults(config))
    _check_models_fit(resolved, config)
    _check_dataset_inputs(resolved["dataset"])
    return resolved


def _resolve(validator, config: dict) -> dict:
    resolved = copy.deepcopy(config)
    errors = sorted(validator.iter_errors(resolved), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(_describe(e) for e in errors))
    return resolved


def _runs(config: dict):
    for role in ("proxies", "targets"):
        for run_name, run in config[role].items():
            yield f"{role}.{run_name}", run


def _with_model_training_defaults(config: dict) -> dict:
    """A copy of ``config`` whose runs' training mappings include their model's own defaults."""
    config = copy.deepcopy(config)
    for _, run in _runs(config):
        defaults = models.training_defaults(run["model"])
        training = dict(run.get("training") or {})
        merged = {**defaults, **training}
        if isinstance(defaults.get("fasttext"), dict) and isinstance(training.get("fasttext"), dict):
            merged["fasttext"] = {**defaults["fasttext"], **training["fasttext"]}
        run["training"] = merged
    return config


# The only training keys fastText takes; the schema's torch defaults are dropped for it.
FASTTEXT_TRAINING_KEYS = ("lr_schedule", "fasttext")


def _check_models_fit(config: dict, given: dict) -> None:
    """Each model reads the data set's modality and gets only training keys it takes.

    ``config`` is the resolved config (changed in place: fastText runs lose the torch
    defaults the schema filled in), ``given`` the config as written.
    """
    name = config["dataset"]["name"]
    modality = data.dataset_modality(name)
    written = {key: run.get("training") or {} for key, run in _runs(given)}
    for key, run in _runs(config):
        spec = models.model_spec(run["model"])
        if spec.modality != modality:
            fitting = [m for m in models.list_models() if models.model_spec(m).modality == modality]
            raise ConfigError(
                f"config key '{key}.model': {run['model']!r} reads {spec.modality} data, but data set {name!r} "
                f"holds {modality} data; {modality} models: {fitting}"
            )
        training = run["training"]
        if "fasttext" in training and spec.trainer != "fasttext":
            raise ConfigError(f"config key '{key}.training.fasttext': only fastText models take it, not {run['model']!r}")
        if "text_length" in training and (spec.modality != "text" or spec.trainer != "torch"):
            raise ConfigError(
                f"config key '{key}.training.text_length': only character-level text models take it, not {run['model']!r}"
            )
        if spec.trainer != "fasttext":
            continue
        if len(training["lr_schedule"]) != 1:
            raise ConfigError(
                f"config key '{key}.training.lr_schedule': fastText takes one piece {{epochs, lr}} (its starting "
                f"rate, decayed linearly to 0), got {len(training['lr_schedule'])}"
            )
        for option in written[key]:
            if option not in FASTTEXT_TRAINING_KEYS:
                raise ConfigError(
                    f"config key '{key}.training.{option}': fastText takes only {list(FASTTEXT_TRAINING_KEYS)} "
                    f"(its own settings go under {key}.training.fasttext)"
                )
        run["training"] = {option: training[option] for option in FASTTEXT_TRAINING_KEYS}


def _check_registered_names(config: dict) -> None:
    name = config["dataset"]["name"]
    if name not in data.list_datasets():
        raise ConfigError(f"config key 'dataset.name': unknown data set {name!r}; allowed values: {data.list_datasets()}")
    for role in ("proxies", "targets"):
        for run_name, run in config[role].items():
            if run["model"] not in models.list_models():
                raise ConfigError(
                    f"config key '{role}.{run_name}.model': unknown model {run['model']!r}; "
                    f"allowed values: {models.list_models()}"
                )


# Keys each kind of data set needs, beyond `name`.
REQUIRED_DATASET_KEYS = {"npz": ("train", "test"), "image_folder": ("path",), "text_csv": ("train", "test")}
# Data sets whose `train` and `test` keys list input files.
FILE_LIST_DATASETS = ("npz", "text_csv")


def _check_dataset_inputs(dataset: dict) -> None:
    for key in REQUIRED_DATASET_KEYS.get(dataset["name"], ()):
        if key not in dataset:
            raise ConfigError(f"config key 'dataset.{key}' is required for data set {dataset['name']!r}")
    for key in ("train", "test"):
        for index, path in enumerate(dataset.get(key, []) if dataset["name"] in FILE_LIST_DATASETS else []):
            if not Path(path).is_file():
                raise ConfigError(f"config key 'dataset.{key}[{index}]': file not found: {Path(path).resolve()}")
    if dataset["name"] == "npz" and not isinstance(dataset.get("classes", ""), str):
        raise ConfigError("config key 'dataset.classes': for npz, the path of a text file with one class name per line")
    if dataset["name"] == "text_csv" and isinstance(dataset.get("classes"), str):
        raise ConfigError(
            "config key 'dataset.classes': for text_csv, the label values in label order (e.g. [neg, pos]) "
            "or a mapping from label value to class name"
        )
    if dataset["name"] == "npz" and "classes" in dataset and not Path(dataset["classes"]).is_file():
        raise ConfigError(f"config key 'dataset.classes': file not found: {Path(dataset['classes']).resolve()}")
    if dataset["name"] == "image_folder":
        for split in ("train", "test"):
            folder = Path(dataset["path"]) / split
            if not folder.is_dir():
                raise ConfigError(
                    f"config key 'dataset.path': expected a folder {folder.resolve()} with one sub-folder of images per class"
                )


def load_config(path: str | Path) -> dict:
    """Read and validate a YAML config file."""
    try:
        config = yaml.load(Path(path).read_text(), Loader=SAFE_LOADER)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(config).__name__}")
    return validate_config(config)


def format_fraction(fraction: float) -> str:
    """The fraction as it appears in file names: 0.4 -> '0.4', 1 -> '1.0'."""
    return str(float(fraction))
