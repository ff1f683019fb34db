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
trainer (``svp.models.trainers``) takes, and a key given that it does not take is refused.
"""

from __future__ import annotations

import copy
import importlib.resources
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path

import yaml

# The model specs, not the networks: validating a config never imports torch.
from svp import data
from svp.models import specs
from svp.errors import ConfigError  # noqa: F401  (callers import it from here too)
from svp.selection.methods import METHODS

# libyaml's safe loader where PyYAML has it: 10x faster than the pure-Python one.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Package data, found through the installed package (a wheel or a zip has no repository
# around it); "svp" rather than this module's package, so the file stays put if config moves.
SCHEMA = importlib.resources.files("svp") / "config.schema.yaml"

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


def _describe(error) -> str:
    """One line for a ``jsonschema.ValidationError``."""
    where = key_path(error.absolute_path)
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


def training_schema_defaults() -> dict:
    """The schema's default of every ``training`` key that has one, and of each key of
    a nested mapping (``fasttext``): where svp's training defaults are written, once."""
    schema = yaml.load(SCHEMA.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    return _defaults_of(schema["$defs"]["training"]["properties"])


def _defaults_of(properties: dict) -> dict:
    defaults = {}
    for name, subschema in properties.items():
        if "default" in subschema:
            defaults[name] = copy.deepcopy(subschema["default"])
        elif "properties" in subschema:
            defaults[name] = _defaults_of(subschema["properties"])
    return defaults


def validate_config(config: dict) -> dict:
    """Return a copy of ``config`` with defaults filled in, or raise ConfigError."""
    import jsonschema

    schema = yaml.load(SCHEMA.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
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
    _check_subset_sizes(resolved)
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
            from svp.models import torchvision_models

            try:
                torchvision_models.architecture(run["model"])
            except ConfigError as error:
                raise ConfigError(f"config key '{key}.model': {error}") from None
            try:
                if named:
                    torchvision_models.weights_enum(run["model"], weights)
            except ConfigError as error:
                raise ConfigError(f"config key '{key}.training.weights': {error}") from None
        if weights and not named:
            from svp.models.pretrained import check_path

            check_path(weights, f"config key '{key}.training.weights'")


def _is_checkpoint_path(weights: str) -> bool:
    from svp.models.pretrained import is_path

    return is_path(weights)


def _check_selection_methods(config: dict) -> None:
    """Each selection method beyond uncertainty is one every proxy's trainer supports
    (fastText trains in one library call: no forgetting counts, no gradients)."""
    for metric in config["selection"]["metrics"]:
        for proxy, run in config["proxies"].items():
            trainer = specs.model_spec(run["model"]).trainer
            if metric in METHODS and metric not in trainer.methods:
                raise ConfigError(
                    f"config key 'selection.metrics': {metric!r} cannot be computed with proxy {proxy!r} (model "
                    f"{run['model']!r}, trained by {trainer.title}), which supports only "
                    f"{', '.join(trainer.methods) or 'no method'} beyond the uncertainty metrics; drop {metric!r} "
                    "or use a torch proxy"
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
    """Refuse dataset keys, as written, that the chosen data set does not read."""
    name = dataset["name"]
    reads = data.config_rules(name).keys
    if reads is None:
        return
    for key in dataset:
        if key == "name" or key in reads:
            continue
        users = sorted(other for other in data.list_datasets() if key in (data.config_rules(other).keys or ()))
        who = f"only {', '.join(users)} do" if users else "no data set reads it"
        raise ConfigError(
            f"config key 'dataset.{key}': data set {name!r} does not use it ({who}); "
            f"remove it. Keys {name!r} reads: {', '.join(reads)}"
        )


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
    training_set = data.config_rules(dataset["name"]).training_set
    return None if training_set is None else training_set(dataset)


def fraction_problem(fraction: float, class_sizes: Sequence[int], class_balanced: bool) -> str | None:
    """Why a subset of ``fraction`` of a training set cannot hold every class, or None.

    ``class_sizes`` are the training examples per class. The select stage asks with the
    real labels; config validation asks earlier where the data set's size is known.
    """
    from svp.selection.orders import smallest_subset

    if not 0.0 < fraction <= 1.0:  # NaN included
        return f"fraction {fraction!r} is not a share of the training set, from 0 (excluded) to 1"
    examples = int(sum(class_sizes))
    kept = math.floor(fraction * examples + 0.5)  # subset_size, before it keeps at least one
    needed = smallest_subset(class_sizes, class_balanced)
    if kept >= needed:
        return None
    why = "so that class-balanced selection reaches every class" if class_balanced else "one per class"
    # The smallest f with floor(f x N + 1/2) >= needed (subset_size), rounded up.
    least = _round_up((needed - 0.5) / examples)
    return (
        f"fraction {float(fraction)!r} keeps {kept:,} of the {examples:,} training examples, but a "
        f"subset needs at least {needed:,} ({why}); use a fraction of at least {format_fraction(least)}"
    )


def _round_up(value: float, digits: int = 2) -> float:
    """``value`` rounded up to ``digits`` significant digits."""
    scale = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return float(f"{math.ceil(value / scale) * scale:.{digits}g}")


def _check_subset_sizes(config: dict) -> None:
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


def format_fraction(fraction: float) -> str:
    """The fraction as it appears in file names: 0.4 -> '0.4', 1 -> '1.0', 1e-05 -> '0.00001'.

    Never in exponent form, which the workflow's fraction wildcard would not match.
    """
    text = format(Decimal(repr(float(fraction))), "f")
    return text if "." in text else f"{text}.0"
