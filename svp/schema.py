"""The bottom layer: the config schema and its defaults, the text format models read, and
how a fraction is written. It imports nothing of svp's, so every layer can use it.

What lives here is read by layers that must not know about each other or about config
validation (``svp.config``, which sits at the top and imports the registries):

- the config schema (svp/config.schema.yaml, package data) and the ``training``
  defaults written in it, which the trainers complete their settings from;
- the character alphabet and text length of the character-level models, which the data
  layer encodes texts with and the networks size their embedding by;
- :func:`format_fraction`, the one way a fraction is spelled in file names and reports.
"""

from __future__ import annotations

import copy
import importlib.resources
from decimal import Decimal

import yaml

# libyaml's safe loader where PyYAML has it: 10x faster than the pure-Python one.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Package data, found through the installed package (a wheel or a zip has no repository
# around it); "svp" rather than this module's package, so the file stays put if this moves.
SCHEMA = importlib.resources.files("svp") / "config.schema.yaml"


def load_schema() -> dict:
    """The config schema, as a fresh mapping (validation fills defaults into copies of it)."""
    return yaml.load(SCHEMA.read_text(encoding="utf-8"), Loader=SAFE_LOADER)


def training_schema_defaults() -> dict:
    """The schema's default of every ``training`` key that has one, and of each key of
    a nested mapping (``fasttext``): where svp's training defaults are written, once."""
    return _defaults_of(load_schema()["$defs"]["training"]["properties"])


def dataset_schema_defaults() -> dict:
    """The schema's defaults of the ``dataset`` keys (``root``, ``download``)."""
    return _defaults_of(load_schema()["properties"]["dataset"]["properties"])


def _defaults_of(properties: dict) -> dict:
    defaults = {}
    for name, subschema in properties.items():
        if "default" in subschema:
            defaults[name] = copy.deepcopy(subschema["default"])
        elif "properties" in subschema:
            defaults[name] = _defaults_of(subschema["properties"])
    return defaults


# --------------------------------------------------------------------------- text format

# Zhang et al.'s (2015) 70-character alphabet in ASCII, with the space Conneau et al.
# (2017) add: 26 letters, 10 digits, 32 punctuation marks, space and newline.
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-,;.!?:'\"/\\|_@#$%^&*~`+=<>()[]{} \n"
PAD = 0
UNKNOWN = 1
VOCAB_SIZE = len(ALPHABET) + 2  # embedding rows: padding, unknown, the alphabet
DEFAULT_LENGTH = 1014  # characters per text in Zhang et al. and the SVP authors' VDCNN code


# --------------------------------------------------------------------------- formatting


def format_fraction(fraction: float) -> str:
    """The fraction as it appears in file names: 0.4 -> '0.4', 1 -> '1.0', 1e-05 -> '0.00001'.

    Never in exponent form, which the workflow's fraction wildcard would not match.
    """
    text = format(Decimal(repr(float(fraction))), "f")
    return text if "." in text else f"{text}.0"
