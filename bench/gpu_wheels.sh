#!/usr/bin/env bash
# Wheels of svp's dependencies for a GPU machine without a package index, for
# bench/gpu.sh (which installs from SVP_WHEELS, default .whl, when that folder exists).
#
#   bash bench/gpu_wheels.sh [FOLDER]     # default .whl in the checkout
#
# Downloads, with this machine's pip, the wheels of snakemake, its SLURM plugin,
# jsonschema and fastText for CPython PY_VERSION (default 3.12) on manylinux x86_64,
# then keeps only those of packages not named in SKIP: GPU images ship torch and the
# scientific stack already, and the wheels travel with the checkout (about 31 MB kept).
# connection_pool, a snakemake dependency published only as source, is built to a wheel.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FOLDER=${1:-$REPO/.whl}
PY_VERSION=${PY_VERSION:-3.12}
PIP=${PIP:-$REPO/.venv/bin/python -m pip}
SKIP=${SKIP:-"numpy pandas scipy scikit-learn matplotlib pyarrow pyyaml requests urllib3 idna certifi
charset-normalizer setuptools packaging jinja2 markupsafe attrs psutil tabulate wrapt
typing-extensions python-dateutil six tqdm pillow filelock"}
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64)

download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
$PIP wheel -q --no-deps -w "$download" connection_pool==0.0.3
$PIP download -q --only-binary=:all: --python-version "$PY_VERSION" --implementation cp "${PLATFORMS[@]}" \
    --find-links "$download" -d "$download" \
    'snakemake>=9,<10' 'snakemake-executor-plugin-slurm>=2.8' 'jsonschema>=4.18' 'fasttext-numpy2>=0.10'
mkdir -p "$FOLDER"
kept=0
for wheel in "$download"/*.whl; do
    # A wheel's project name is its file name up to the first '-', with '_' for '-'.
    name=$(basename "$wheel" | cut -d- -f1 | tr '_' '-' | tr '[:upper:]' '[:lower:]')
    if ! tr -s ' \n' '\n' <<<"$SKIP" | grep -qxF -- "$name"; then
        cp "$wheel" "$FOLDER/"
        kept=$((kept + 1))
    fi
done
echo "$kept wheels in $FOLDER ($(du -sh "$FOLDER" | cut -f1)); bench/gpu.sh installs from there"
