"""Validate an experiment's config before any job runs, and fill in the defaults.

The JSON schema (svp/config.schema.yaml, package data) describes and documents every
key; this module applies it with messages that name the offending key and the allowed
values, then checks what a schema cannot know: the registered data sets and models,
whether each model reads the data set's modality (images or texts), the training keys
that only some models take, the data set keys each data set reads, whether each
fraction leaves a usable subset, and the input files the chosen data set needs.

Config files are read strictly (``read_config_file``): a duplicate key, one of YAML
1.1's word booleans (yes, no, on, off) or a YTE template marker is refused with its line.

A run's ``training`` mapping is completed in two steps: first from the model's own
defaults in the model registry (its authors' settings, e.g. VDCNN's Amazon schedule, or
its trainer's, e.g. fastText's schedule), then from the schema's defaults, the one place
svp's generic training defaults are written. A run keeps only the settings its model's
trainer (``svp.trainers``) takes, and a key given that it does not take is refused.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from pathlib import Path

import yaml

# The model specs, not the networks: validating a config never imports torch.
from svp import data
from svp.models import specs
from svp.errors import ConfigError  # noqa: F401  (callers import it from here too)
from svp.schema import SAFE_LOADER, dataset_schema_defaults, load_schema
from svp.selection.methods import selection_method
from svp.selection.orders import fraction_problem


# A config is a page of settings: a bigger file is the wrong file, and reading no more
# than this keeps a device such as /dev/zero from filling the memory.
MAX_CONFIG_BYTES = 1 << 20
# Snakemake runs a config holding this key through YTE, which evaluates the Python in it.
YTE_MARKER = "__use_yte__"
# YAML 1.1 (what PyYAML, and so Snakemake, reads) takes these plain words for booleans;
# YAML 1.2 and JSON do not, and `classes: [no, yes]` would silently become [False, True].
YAML11_BOOLEAN_WORDS = ("yes", "no", "on", "off")


class StrictConfigLoader(SAFE_LOADER):
    """YAML's safe loader, refusing duplicate keys and YAML 1.1's word booleans with their line."""

    def construct_mapping(self, node, deep=False):
        first_line: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` may override keys
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                seen = key in first_line
            except TypeError:  # an unhashable key: the safe loader refuses it itself
                continue
            if seen:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"duplicate key {key!r} (first given on line {first_line[key] + 1}); give each key once",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)

    def construct_yaml_bool(self, node):
        if node.value.lower() in YAML11_BOOLEAN_WORDS:
            raise yaml.constructor.ConstructorError(
                None, None,
                f"{node.value!r} is a boolean only in old YAML (1.1); write true or false, "
                f"or quote it ('{node.value}') if you mean the text",
                node.start_mark,
            )
        return super().construct_yaml_bool(node)


StrictConfigLoader.add_constructor("tag:yaml.org,2002:bool", StrictConfigLoader.construct_yaml_bool)


def _is_integer(checker, instance) -> bool:
    # JSON Schema counts 128.0 as an integer, but torch and range() do not: a float
    # here would pass the check and fail in the job, so only ints are integers.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(checker, instance) -> bool:
    # NaN passes every minimum and maximum (each comparison is false), and a learning
    # rate of NaN or infinity trains to chance without an error: neither is a number here.
    if isinstance(instance, bool) or not isinstance(instance, (int, float)):
        return False
    return isinstance(instance, int) or math.isfinite(instance)


def _svp_validator(validator_class):
    """``validator_class`` with svp's integer and number types, filling in each missing
    property from its schema ``default``."""
    import jsonschema  # here: every svp command imports ConfigError, few validate

    validate_properties = validator_class.VALIDATORS["properties"]

    def fill_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    type_checker = validator_class.TYPE_CHECKER.redefine_many({"integer": _is_integer, "number": _is_number})
    return jsonschema.validators.extend(validator_class, {"properties": fill_defaults}, type_checker=type_checker)


def key_path(parts: Iterable) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _deeper_error(error):
    """The error inside an ``anyOf`` alternative that the value matched in shape but failed
    deeper down (a NaN inside a keep policy's settings), or None: that one names the key."""
    depth = len(error.absolute_path)

    def alternatives(anyof):  # through anyOfs nested at the same key (a keep policy, or a list of them)
        for e in anyof.context or ():
            if e.validator == "anyOf" and len(e.absolute_path) == depth:
                yield from alternatives(e)
            else:
                yield e

    deeper = [e for e in alternatives(error) if len(e.absolute_path) > depth]
    if not deeper:
        return None
    # The deepest first, a wrong type (NaN) before the bounds it also fails.
    return min(deeper, key=lambda e: (-len(e.absolute_path), e.validator != "type"))


def _describe(error) -> str:
    """One line for a ``jsonschema.ValidationError``."""
    where = key_path(error.absolute_path)
    if error.validator == "anyOf" and (inner := _deeper_error(error)) is not None:
        about = f" ('{where}': {error.schema['description'].strip()})" if "description" in error.schema else ""
        return f"{_describe(inner)}{about}"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed), key=str)  # YAML keys may be numbers too
        keys = ", ".join(f"'{key_path([*error.absolute_path, k])}'" for k in unknown)
        return f"unknown config key {keys}; allowed keys here: {', '.join(allowed)}"
    if "propertyNames" in error.schema_path:  # a name the user chose (a proxy's, a target's)
        where = key_path([*error.absolute_path, _shown(error.instance, quote=False)])
        return f"config key '{where}': the name {_shown(error.instance)} is not allowed; {error.schema['description'].strip()}"
    if error.validator == "enum":
        return f"config key '{where}': {error.instance!r} is not allowed; allowed values: {error.validator_value}"
    if error.validator == "type":
        return f"config key '{where}': {_describe_type_error(error.instance, error.validator_value)}"
    if error.validator in ("pattern", "maxLength", "anyOf") and "description" in error.schema:
        return f"config key '{where}': {_shown(error.instance)} is not allowed; {error.schema['description'].strip()}"
    return f"config key '{where}': {error.message}"


def _shown(value, quote: bool = True, limit: int = 40) -> str:
    """``value`` for a message, cut short if long (an over-long name would fill the screen)."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(value) if quote else text
    cut = f"{text[:limit]}..."
    return f"{cut!r} ({len(text)} characters)" if quote else cut


def _describe_type_error(value, expected) -> str:
    expected = [expected] if isinstance(expected, str) else list(expected)
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number; NaN and infinity are never valid settings"
    wanted = " or ".join(expected)
    if isinstance(value, float) and value.is_integer() and "integer" in expected:
        return f"{value!r} is not an integer; write {int(value)}, without a decimal point"
    if isinstance(value, str) and ("number" in expected or "integer" in expected):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if not math.isfinite(number):  # JSON's NaN and Infinity, read as YAML
                return f"{value!r} is not a finite number; NaN and infinity are never valid settings"
            return (
                f"{value!r} is text, not a {wanted}: write numbers without quotes, and exponents "
                f"with a dot and a sign (YAML 1.1 reads 1e-3 as text; write 1.0e-3 or 0.001)"
            )
    return f"{value!r} is not of type {', '.join(repr(t) for t in expected)}"


def validate_config(config: dict) -> dict:
    """Return a copy of ``config`` with defaults filled in, or raise ConfigError."""
    import jsonschema

    schema = load_schema()
    validator = _svp_validator(jsonschema.validators.validator_for(schema))(schema)
    resolved = _resolve(validator, config)
    _check_registered_names(resolved)
    _check_dataset_keys(config["dataset"])
    # Now that the model names are known good: the models' own training defaults first.
    resolved = _resolve(validator, _with_model_training_defaults(config))
    _check_models_fit(resolved, config)
    _check_weights(resolved)
    _check_selection_methods(resolved)
    _check_dataset_inputs(resolved["dataset"])
    _check_inputs_fit(resolved)
    _check_subset_sizes(resolved)
    _check_fractions_differ(resolved)
    _check_coverage(resolved)
    _check_active_learning(resolved)
    return resolved


def _resolve(validator, config: dict) -> dict:
    resolved = copy.deepcopy(config)
    errors = sorted(validator.iter_errors(resolved), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    # A value of the wrong type (NaN among them) also fails its bounds: name it once.
    wrong_type = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    errors = [e for e in errors if e.validator == "type" or tuple(e.absolute_path) not in wrong_type]
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
        defaults = specs.training_defaults(run["model"])
        training = dict(run.get("training") or {})
        merged = {**defaults, **training}
        for option, default in defaults.items():  # a mapping of settings (fastText's) is merged key by key
            if isinstance(default, dict) and isinstance(training.get(option), dict):
                merged[option] = {**default, **training[option]}
        run["training"] = merged
    return config


def _check_models_fit(config: dict, given: dict) -> None:
    """Each model reads the data set's modality and gets only training keys its trainer takes.

    ``config`` is the resolved config (changed in place: each run keeps only the settings
    its trainer takes, so fastText runs lose the torch defaults the schema filled in),
    ``given`` the config as written.
    """
    name = config["dataset"]["name"]
    modality = data.dataset_modality(name)
    written = {key: run.get("training") or {} for key, run in _runs(given)}
    for key, run in _runs(config):
        spec = specs.model_spec(run["model"])
        if spec.modality != modality:
            fitting = [m for m in specs.list_models() if specs.model_spec(m).modality == modality]
            raise ConfigError(
                f"config key '{key}.model': {run['model']!r} reads {spec.modality} data, but data set {name!r} "
                f"holds {modality} data; {modality} models: {fitting}"
            )
        trainer = spec.trainer
        for option in written[key]:
            if option not in spec.settings:
                raise ConfigError(_untaken_setting(f"{key}.training", option, run["model"], spec))
        training = run["training"]
        if trainer.one_lr_piece and len(training["lr_schedule"]) != 1:
            raise ConfigError(
                f"config key '{key}.training.lr_schedule': {trainer.title} takes one piece {{epochs, lr}} (its starting "
                f"rate, decayed linearly to 0), got {len(training['lr_schedule'])}"
            )
        run["training"] = {option: value for option, value in training.items() if option in spec.settings}
        _check_gpus(key, run, trainer)


def _check_gpus(key: str, run: dict, trainer) -> None:
    """A run on several GPUs needs a trainer that shares one model among them, and a batch it splits evenly."""
    gpus = run.get("gpus", 1)
    if gpus == 1:
        return
    if not trainer.several_gpus:
        raise ConfigError(
            f"config key '{key}.gpus': {run['model']!r} is trained by {trainer.title}, in one process; gpus above 1 "
            "take a torch model"
        )
    batch_size = run["training"]["batch_size"]
    if batch_size % gpus:
        raise ConfigError(
            f"config key '{key}.training.batch_size': {batch_size} examples do not split evenly over gpus: {gpus} "
            f"(each GPU trains on an equal share of every batch); choose a batch_size that divides by {gpus}"
        )


def _check_weights(config: dict) -> None:
    """torchvision models exist and their named weights too; a checkpoint's path names a file.

    Only a config naming a torchvision model loads torchvision (about a second) to check it.
    """
    for key, run in _runs(config):
        weights = run["training"].get("weights")
        named = bool(weights) and not _is_checkpoint_path(weights)  # torchvision weights by name
        if named and not specs.is_torchvision_model(run["model"]):
            raise ConfigError(
                f"config key '{key}.training.weights': {weights!r} names torchvision weights, which only "
                f"torchvision/<name> models take; for {run['model']!r} give the path of a local checkpoint"
            )
        if specs.is_torchvision_model(run["model"]):
            from svp.models import torchvision_names

            try:
                torchvision_names.architecture(run["model"])
            except ConfigError as error:
                raise ConfigError(f"config key '{key}.model': {error}") from None
            try:
                if named:
                    torchvision_names.weights_enum(run["model"], weights)
            except ConfigError as error:
                raise ConfigError(f"config key '{key}.training.weights': {error}") from None
        if weights and not named:
            from svp.models.pretrained import check_path

            check_path(weights, f"config key '{key}.training.weights'")


def _is_checkpoint_path(weights: str) -> bool:
    from svp.models.pretrained import is_path

    return is_path(weights)


def _check_selection_methods(config: dict) -> None:
    """Each selection method is one every proxy's trainer provides for: what it needs
    (svp.selection.methods) among what the trainer's models give (fastText trains in one
    library call: no forgetting counts, no gradients)."""
    for metric in config["selection"]["metrics"]:
        method = selection_method(metric)
        for proxy, run in config["proxies"].items():
            trainer = specs.model_spec(run["model"]).trainer
            if not method.supported_by(trainer):
                raise ConfigError(
                    f"config key 'selection.metrics': {metric!r} needs {method.needs}, which proxy {proxy!r} (model "
                    f"{run['model']!r}, trained by {trainer.title}) does not give; drop {metric!r} or use a proxy "
                    f"trained by {' or '.join(method.trainers)}"
                )


def _untaken_setting(where: str, option: str, model: str, spec: specs.ModelSpec) -> str:
    """The message for a training key the model's trainer does not take, naming the models that do."""
    trainer = spec.trainer
    modality = f" for {spec.modality} models" if trainer.text_settings else ""  # its settings depend on it
    message = f"config key '{where}.{option}': {trainer.title} takes only {list(spec.settings)}{modality}"
    if trainer.options_key:
        message += f" (its own settings go under {where}.{trainer.options_key})"
    takers = [other for other in specs.list_models() if option in specs.model_spec(other).settings]
    # A key few models take (fastText's settings, a text length) names them: the likely mix-up.
    if takers and len(takers) <= 4:
        message += f"; {option!r} is for {', '.join(takers)}, not {model!r}"
    return message


def _check_registered_names(config: dict) -> None:
    name = config["dataset"]["name"]
    if name not in data.list_datasets():
        raise ConfigError(f"config key 'dataset.name': unknown data set {name!r}; allowed values: {data.list_datasets()}")
    for role in ("proxies", "targets"):
        for run_name, run in config[role].items():
            if not specs.is_model(run["model"]):
                raise ConfigError(
                    f"config key '{role}.{run_name}.model': unknown model {run['model']!r}; "
                    f"allowed values: {specs.list_models()}, or {specs.TORCHVISION_PREFIX}<name> for a "
                    "torchvision.models classifier (e.g. torchvision/resnet50)"
                )


# Each data set declares, where it registers (svp.data), the dataset keys it reads, those
# it needs, the keys listing input files, its own further checks and, where known, the
# size of its training set. A key the chosen data set would ignore (`image_size` on
# digits) is refused rather than silently doing nothing.


def _check_dataset_keys(dataset: dict) -> None:
    """Refuse dataset keys, as written, that the chosen data set does not read (``svp prepare``
    asks the same, ``check_prepare_options``)."""
    if problem := data.unread_key_problem(dataset):
        raise ConfigError(problem)


def dataset_defaults() -> dict:
    """The schema's defaults of the ``dataset`` keys (``root``, ``download``), which validation
    fills in for every data set: the workflow's prepare job gets them whether read or not."""
    return dataset_schema_defaults()


def check_prepare_options(dataset: dict) -> None:
    """``svp prepare --dataset``: the config's check of the dataset keys, less those that
    validation filled in with their default."""
    if isinstance(dataset.get("name"), str) and dataset["name"] in data.list_datasets():
        if problem := data.unread_key_problem(dataset, filled_in=dataset_defaults()):
            raise ConfigError(problem)


def _check_inputs_fit(config: dict) -> None:
    """Every dataset option, and every model, against the images they will meet, where their
    shape is known before preparing (else the prepare, train and score jobs check the same)."""
    shape = data.known_image_shape(config["dataset"])
    if shape is None:
        return
    if problem := data.image_option_problem(config["dataset"], shape):
        raise ConfigError(problem)
    for key, run in _runs(config):
        if problem := specs.input_problem(run["model"], shape):
            raise ConfigError(f"config key '{key}.model': {problem} (data set {config['dataset']['name']!r})")


def _check_dataset_inputs(dataset: dict) -> None:
    rules = data.config_rules(dataset["name"])
    for key in rules.required:
        if key not in dataset:
            raise ConfigError(f"config key 'dataset.{key}' is required for data set {dataset['name']!r}")
    for key in rules.file_lists:
        for index, path in enumerate(dataset.get(key, [])):
            if not data.is_file(path):
                raise ConfigError(f"config key 'dataset.{key}[{index}]': file not found: {Path(path).resolve()}")
    if rules.check is not None:
        rules.check(dataset)


def known_training_set(dataset: dict) -> tuple[int, int] | None:
    """(training examples, classes) of the data set, where known without preparing it.

    Their classes are near balanced (SVHN's largest is under 3x its smallest), so a
    class-balanced subset needs one example per class too (svp.selection). The fractions
    of other data sets are checked when the subset is selected.
    """
    from svp.data import validation

    training_set = data.config_rules(dataset["name"]).training_set
    if training_set is None:
        return None
    examples, classes = training_set({key: value for key, value in dataset.items() if key != validation.KEY})
    # What the validation split leaves (near-balanced classes, as below).
    return validation.approximate_training_size(examples, classes, dataset.get(validation.KEY)), classes


def _check_validation_share(dataset: dict) -> None:
    """A validation share leaves every class a training example, where the size is known
    (else the prepare job checks it, naming the key)."""
    from svp.data import validation

    share = dataset.get(validation.KEY)
    training_set = data.config_rules(dataset["name"]).training_set
    if share is None or training_set is None:
        return
    examples, classes = training_set({key: value for key, value in dataset.items() if key != validation.KEY})
    sizes = [examples // classes + (i < examples % classes) for i in range(classes)]
    if problem := validation.share_problem(sizes, share):
        raise ConfigError(f"config key 'dataset.{validation.KEY}': {problem}")


def _check_subset_sizes(config: dict) -> None:
    _check_validation_share(config["dataset"])
    known = known_training_set(config["dataset"])
    if known is None:
        return
    examples, classes = known
    # Near-balanced classes (see known_training_set): split the examples evenly.
    class_sizes = [examples // classes + (i < examples % classes) for i in range(classes)]
    for index, fraction in enumerate(config["selection"]["fractions"]):
        problem = fraction_problem(fraction, class_sizes, config["selection"]["class_balanced"])
        if problem:
            raise ConfigError(f"config key 'selection.fractions[{index}]': {problem}")


# Significant digits of a fraction that tables and plots show (the schema's smallest fraction is 1e-6).
PRINTED_DIGITS = 6


def _check_fractions_differ(config: dict) -> None:
    """Two fractions may not look or be the same: printed alike (0.30000000000000004 and 0.3
    both show as 0.3 in summary.csv and the tables, whose rows would mix), or, where the
    training set's size is known, keeping the same number of examples (each would train the
    same subset again)."""
    fractions = config["selection"]["fractions"]
    known = known_training_set(config["dataset"])
    first: dict = {}
    for index, fraction in enumerate(fractions):
        shown = f"{fraction:.{PRINTED_DIGITS}g}"
        if shown in first:
            raise ConfigError(
                f"config key 'selection.fractions[{index}]': {fraction!r} and selection.fractions[{first[shown]}] "
                f"({fractions[first[shown]]!r}) both print as {shown} in tables; give each fraction once, with at most "
                f"{PRINTED_DIGITS} significant digits"
            )
        first[shown] = index
    if known is None:
        return
    from svp.selection.orders import subset_size

    examples = known[0]
    kept: dict = {}
    for index, fraction in sorted(enumerate(fractions), key=lambda item: item[1]):
        size = subset_size(fraction, examples)
        if size == examples and fraction < 1.0:
            raise ConfigError(
                f"config key 'selection.fractions[{index}]': {fraction!r} keeps all {examples:,} training examples, as "
                f"the full-data baseline (always trained) does; drop it, or use a smaller fraction"
            )
        if size in kept:
            other = kept[size]
            raise ConfigError(
                f"config key 'selection.fractions[{index}]': {fraction!r} keeps {size:,} of the {examples:,} training "
                f"examples, as selection.fractions[{other}] ({fractions[other]!r}) does: both would train the same "
                f"subset; drop one, or make them differ by at least 1/{examples:,}"
            )
        kept[size] = index


def _check_coverage(config: dict) -> None:
    """Each fraction below 1 fits in what a coverage policy leaves after dropping its hardest
    share: exactly, with the rounding of the subset and of the share, where the training
    set's size is known and classes are not balanced; the select stage checks the rest."""
    from svp.selection.coverage import COVERAGE, Coverage

    from svp.selection.orders import keep_name

    keep = config["selection"].get("keep")
    policies = keep if isinstance(keep, list) else [keep]
    if isinstance(keep, list):
        # {middle: 0.1} and {middle: 0.10}, or bins left out and bins: 50, name one selection.
        names = [keep_name(policy) for policy in policies]
        for position, name in enumerate(names):
            if name in names[:position]:
                raise ConfigError(
                    f"config key 'selection.keep[{position}]': the same policy as selection.keep[{names.index(name)}] "
                    f"({name}); give each policy once"
                )
    known = known_training_set(config["dataset"])
    for position, policy in enumerate(policies):
        if not (isinstance(policy, dict) and COVERAGE in policy):
            continue
        coverage = Coverage.from_config(policy[COVERAGE])
        where = f"selection.keep{f'[{position}]' if isinstance(keep, list) else ''}.coverage.prune_hardest"
        for index, fraction in enumerate(config["selection"]["fractions"]):
            if fraction >= 1.0:  # the full-data baseline: no selection
                continue
            detail = ""
            if fraction + coverage.prune_hardest > 1.0 + 1e-12:
                detail = f"keep prune_hardest + fraction at most 1 (here prune_hardest at most {1.0 - fraction:.4g})"
            elif known is not None and not config["selection"]["class_balanced"]:
                # Exact where the size is known; class-balanced quotas are checked by the select stage.
                examples = known[0]
                kept, left = math.floor(fraction * examples + 0.5), examples - coverage.pruned(examples)
                if kept > left:
                    detail = f"of the {examples:,} training examples it leaves {left:,}, and the subset takes {kept:,}"
            if detail:
                raise ConfigError(
                    f"config key '{where}': dropping the hardest {coverage.prune_hardest:g} leaves too few examples "
                    f"for fraction {fraction:g} (selection.fractions[{index}]); a coverage subset never holds the "
                    f"examples it drops: {detail}. Lower prune_hardest or the fraction"
                )


def _check_active_learning(config: dict) -> None:
    """Selectors name a run; budgets grow; each round labels at least one example where the size is known."""
    from svp.active import rounds

    known = known_training_set(config["dataset"])
    rounds.check_config(config, None if known is None else known[0])


def read_config_file(path: str | Path) -> dict:
    """The mapping in a YAML (or JSON) config file; ConfigError naming the file and line if unusable."""
    path = Path(path)
    try:
        if path.is_dir():
            raise ConfigError(f"{path} is a folder, not a config file; give a YAML file such as config/config.yaml")
        if path.exists() and not path.is_file():
            raise ConfigError(f"{path} is not a regular file (a device, pipe or socket); give a YAML config file")
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file ({error.strerror or error})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: over {MAX_CONFIG_BYTES // 2**20} MiB, too big for a config file; is it the right file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}, line {line}: not valid UTF-8 (byte 0x{raw[error.start]:02x}); save the file as UTF-8"
        ) from None
    try:
        config = yaml.load(text, Loader=StrictConfigLoader)
    except yaml.MarkedYAMLError as error:
        raise ConfigError(_describe_yaml_error(path, text, error)) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    if config is None:
        raise ConfigError(f"{path}: the file is empty; a config maps keys to values (experiment: ..., dataset: ...)")
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(config).__name__}")
    if YTE_MARKER in config:
        raise ConfigError(
            f"{path}: config key '{YTE_MARKER}': svp configs are plain YAML, not YTE templates (Snakemake runs "
            f"the Python in a template when it reads the file); remove the key and write the values out"
        )
    return config


def _describe_yaml_error(path: Path, text: str, error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    problem = error.problem or error.context or "not valid YAML"
    where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
    lines = text.splitlines()
    line = lines[mark.line] if mark and mark.line < len(lines) else ""
    if "\t" in problem or line[: len(line) - len(line.lstrip())].count("\t"):
        return f"{where}: a tab in the indentation; YAML indents with spaces only, so replace the tab with spaces"
    if isinstance(error, yaml.constructor.ConstructorError):
        return f"{where}: {problem}"
    context = ""
    if error.context and error.problem:
        started = f" started on line {error.context_mark.line + 1}" if error.context_mark else ""
        context = f" ({error.context}{started})"
    return f"{where}: not valid YAML: {problem}{context}"


def load_config(path: str | Path) -> dict:
    """Read a YAML config file strictly and validate it."""
    return validate_config(read_config_file(path))


def check_config_files(paths: Iterable[str | Path]) -> None:
    """Read each config file strictly, for the Snakefile: Snakemake's own reading lets
    duplicate keys, YAML 1.1 booleans and YTE templates through."""
    for path in paths:
        read_config_file(path)
