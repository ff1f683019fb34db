#!/usr/bin/env bash
# svp on one GPU in under 10 minutes, everything printed: the environment (made if
# missing), the whole config/cifar10-gpu-fast.yaml grid through Snakemake with its
# tables, then training throughput (bench/gpu_throughput.py: svp's on-device loop, with
# and without torch.compile, against a torchvision DataLoader), then an ImageNet-shaped
# step (bench/gpu_imagenet.py: synthetic JPEGs read from disk, ResNet18 scoring and
# ResNet50 training, on one GPU and with DDP on all of them, each against a bare loop).
#
#   bash bench/gpu.sh            # on a GPU machine (BENCHMARKS.md, "GPU")
#   bash bench/gpu.sh --smoke    # a CPU check of the same code paths: 128 images, one epoch
#
# Options: --data DIR, --budget SECONDS, --skip-throughput, --skip-grid, --skip-imagenet, --smoke,
# --grid-config FILE (another config over the CIFAR-10 npz copy, e.g.
# config/cifar10-cpu-grid.yaml; default config/cifar10-gpu-fast.yaml).
# Variables: SVP_DATA (the CIFAR-10 npz folder; default ../shared/data/cifar10 beside the
# checkout), OUT (tables and logs; default /tmp/svp-gpu), SVP_GPU_WORK (the grid's work
# folder, results/ inside; default /tmp/svp-gpu-work), TIME_BUDGET (seconds for the whole
# script; default 570, 420 with --smoke), THROUGHPUT_RESERVE (seconds the grid leaves to
# the throughput part; default 100), THROUGHPUT_BUDGET (at most this many seconds for the
# throughput part; default 150), SVP_WHEELS (a folder of wheels to install svp's
# dependencies from, offline; default .whl), SVP_PYTHON (use this Python, make no
# environment), GRID_GPU_JOBS (GPU jobs Snakemake runs at once, sharing one GPU when the
# machine has one; default 1), IMAGENET_RESERVE (seconds the earlier parts leave to the
# ImageNet-shaped step; default 150, 90 with --smoke), IMAGENET_IMAGES (its synthetic
# training JPEGs; default 12800). The grid's results, less models and data, come back as
# $OUT/grid-results.tar.gz. Parts that would not fit the budget are skipped with a message.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SMOKE=0
RUN_THROUGHPUT=1
RUN_GRID=1
RUN_IMAGENET=1
DATA=${SVP_DATA:-$REPO/../shared/data/cifar10}
BUDGET=${TIME_BUDGET:-}
GRID_CONFIG=$REPO/config/cifar10-gpu-fast.yaml
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) SMOKE=1 ;;
        --data) DATA=$2; shift ;;
        --grid-config) GRID_CONFIG=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift ;;
        --budget) BUDGET=$2; shift ;;
        --skip-throughput) RUN_THROUGHPUT=0 ;;
        --skip-grid) RUN_GRID=0 ;;
        --skip-imagenet) RUN_IMAGENET=0 ;;
        -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "bench/gpu.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$BUDGET" ]; then BUDGET=$([ $SMOKE = 1 ] && echo 420 || echo 570); fi
THROUGHPUT_BUDGET=${THROUGHPUT_BUDGET:-150}
# The grid runs first (it is the longer, and a part stopped half-way loses most); it
# leaves this much of the budget to the throughput part, which skips what does not fit.
THROUGHPUT_RESERVE=${THROUGHPUT_RESERVE:-$([ $SMOKE = 1 ] && echo 40 || echo 100)}
IMAGENET_RESERVE=${IMAGENET_RESERVE:-$([ $SMOKE = 1 ] && echo 90 || echo 150)}
[ $RUN_IMAGENET = 0 ] && IMAGENET_RESERVE=0
# The parts before the ImageNet-shaped step leave it its reserve.
THROUGHPUT_RESERVE=$((THROUGHPUT_RESERVE + IMAGENET_RESERVE))
OUT=${OUT:-/tmp/svp-gpu}
WORK=${SVP_GPU_WORK:-/tmp/svp-gpu-work}
WHEELS=${SVP_WHEELS:-$REPO/.whl}
mkdir -p "$OUT"
# Everything printed also goes to $OUT/gpu.log (a device machine returns stdout and $OUT).
exec > >(tee "$OUT/gpu.log") 2>&1
# svp's progress bars would bury the tables; the logs under $WORK keep every epoch.
export TQDM_DISABLE=1 PYTHONUNBUFFERED=1

START=$SECONDS
PART_TIMES=()
elapsed() { echo $((SECONDS - START)); }
left() { echo $((BUDGET - (SECONDS - START))); }
begin() {
    PART=$1
    PART_START=$SECONDS
    echo
    echo "=== $PART (at $(elapsed) s of the $BUDGET s budget)"
}
finish() {
    local used=$((SECONDS - PART_START))
    PART_TIMES+=("$(printf '%-12s %5d s  %s' "$PART" "$used" "$1")")
    echo "=== $PART: $1, $used s; $(left) s of the budget left"
}
skip() {
    PART_TIMES+=("$(printf '%-12s %5s    skipped: %s' "$1" - "$2")")
    echo
    echo "=== $1 skipped: $2"
}
# run_within SECONDS COMMAND...: run a part's script, stopped after SECONDS; finish the part.
run_within() {
    local allowed=$1
    shift
    timeout --kill-after=10 "$allowed" "$@"
    local status=$?
    if [ $status = 0 ]; then finish "done"; else finish "stopped (exit $status; 124: over its $allowed s)"; fi
}
summary() {
    echo
    echo "=== time per part (budget $BUDGET s, used $(elapsed) s)"
    printf '%s\n' "${PART_TIMES[@]}"
    echo "tables and logs: $OUT"
}
trap summary EXIT

echo "bench/gpu.sh $([ $SMOKE = 1 ] && echo '--smoke ')in $REPO, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
echo "data: $DATA; tables: $OUT; grid work folder: $WORK"

# --- data --------------------------------------------------------------------------------
for name in train-0.npz train-1.npz test.npz classes.txt; do
    if [ ! -f "$DATA/$name" ]; then
        echo "CIFAR-10 not found: $DATA/$name is missing. Pass the folder of the npz copy" \
            "(train-0.npz, train-1.npz, test.npz, classes.txt; ../shared/data/README.md) with" \
            "--data DIR or SVP_DATA=DIR." >&2
        exit 1
    fi
done
DATA=$(cd "$DATA" && pwd)

# --- environment -------------------------------------------------------------------------
begin environment
have_svp() { "$1" -c 'import svp.models, torch, snakemake' >/dev/null 2>&1; }
if [ -n "${SVP_PYTHON:-}" ]; then
    PY=$SVP_PYTHON
    finish "SVP_PYTHON=$PY"
elif have_svp "$REPO/.venv/bin/python"; then
    PY=$REPO/.venv/bin/python
    finish "the existing .venv"
elif command -v python3 >/dev/null && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    # GPU images ship a CUDA torch: reuse it rather than download a second one. When that
    # python3 is itself a virtual environment (GPU images often are) svp goes into it,
    # else into a .venv that sees the system's packages; pip installs only what is
    # missing, from SVP_WHEELS when that folder exists (no package index), else from PyPI.
    if python3 -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
        PY=$(python3 -c 'import sys; print(sys.executable)')
        where="the environment of $PY"
    else
        python3 -m venv --clear --system-site-packages "$REPO/.venv"
        PY=$REPO/.venv/bin/python
        where="a .venv over the system's torch"
    fi
    if [ -d "$WHEELS" ]; then
        # No package index: the folder holds exactly what the image lacks (bench/gpu_wheels.sh),
        # installed as they are. Letting pip resolve svp's requirements against the image's
        # own packages failed on the H200 image (ResolutionImpossible over its matplotlib),
        # although every requirement was present.
        "$PY" -m pip install -q --no-index --no-deps --no-compile "$WHEELS"/*.whl || exit 1
        "$PY" -m pip install -q --no-deps --no-build-isolation -e "$REPO" || exit 1
    elif ! "$PY" -m pip install -q --no-build-isolation --retries 1 --timeout 15 -e "$REPO"; then
        echo "could not install all of svp's dependencies (see above); installing svp alone:" \
            "the throughput part needs only torch, the grid needs snakemake too (bench/gpu_wheels.sh)"
        "$PY" -m pip install -q --no-deps --no-build-isolation -e "$REPO" || exit 1
    fi
    finish "svp installed in $where"
else
    make -C "$REPO" install || exit 1
    PY=$REPO/.venv/bin/python
    finish "make install"
fi
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
SMOKE=$SMOKE "$PY" - <<'EOF' || exit 1
import os, sys
import torch
cuda = torch.cuda.is_available()
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), GPU: "
      + (", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) if cuda else "none"))
if not cuda and os.environ["SMOKE"] == "0":
    sys.exit("torch sees no GPU, and the figures of this script mean something on a GPU only. "
             "For the CPU check of its code paths: bash bench/gpu.sh --smoke")
EOF

# --- grid --------------------------------------------------------------------------------
if [ $RUN_GRID = 0 ]; then
    skip grid "--skip-grid"
elif ! "$PY" -c 'import snakemake' 2>/dev/null; then
    skip grid "snakemake is not installed: put its wheels in SVP_WHEELS (BENCHMARKS.md, GPU)"
elif [ $(($(left) - THROUGHPUT_RESERVE)) -lt 60 ]; then
    skip grid "$(left) s left, $THROUGHPUT_RESERVE s of them kept for the parts after it"
else
    begin grid
    rm -rf "$WORK"  # a fresh grid: leftover results would make Snakemake skip jobs
    mkdir -p "$WORK"
    args=(config --data "$DATA" --config-out "$WORK/config.yaml" --grid-config "$GRID_CONFIG")
    [ $SMOKE = 1 ] && args+=(--smoke)
    "$PY" "$REPO/bench/gpu_grid.py" "${args[@]}" || exit 1
    experiment=$("$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["experiment"])' "$WORK/config.yaml")
    targets=()  # on a GPU: the whole report (rule all); the smoke check stops at the results table
    [ $SMOKE = 1 ] && targets=("results/$experiment/report/results.md")
    cores=$([ $SMOKE = 1 ] && echo 2 || echo all)
    allowed=$(($(left) - THROUGHPUT_RESERVE - 15))
    echo "snakemake, at most $allowed s; its log: $OUT/snakemake.log"
    grid_start=$SECONDS
    timeout --kill-after=20 "$allowed" "$PY" -m snakemake "${targets[@]}" --snakefile "$REPO/Snakefile" \
        --directory "$WORK" --cores "$cores" --resources gpu="${GRID_GPU_JOBS:-1}" --configfile "$WORK/config.yaml" \
        >"$OUT/snakemake.log" 2>&1
    status=$?
    grid_seconds=$((SECONDS - grid_start))
    if [ $status != 0 ]; then
        echo "snakemake stopped (exit $status; 124: over its $allowed s); the end of its log:"
        tail -n 25 "$OUT/snakemake.log"
    fi
    "$PY" "$REPO/bench/gpu_grid.py" report --workdir "$WORK" --config "$WORK/config.yaml" --out "$OUT" \
        --wall-seconds "$grid_seconds"
    # Everything but models and data: the metrics, histories, scores, subsets and tables.
    tar -czf "$OUT/grid-results.tar.gz" -C "$WORK" --exclude='*.pt' --exclude='*.npz' --exclude='*.bin' \
        "results/$experiment" 2>/dev/null
    if [ $status = 0 ]; then finish "done, $grid_seconds s end to end"; else finish "stopped (exit $status)"; fi
fi

# --- throughput --------------------------------------------------------------------------
if [ $RUN_THROUGHPUT = 0 ]; then
    skip throughput "--skip-throughput"
elif [ $(($(left) - IMAGENET_RESERVE)) -lt 30 ]; then
    skip throughput "$(left) s left, $IMAGENET_RESERVE s of them kept for the ImageNet-shaped step"
else
    begin throughput
    allowed=$(($(left) - 5 - IMAGENET_RESERVE))
    [ $allowed -gt $THROUGHPUT_BUDGET ] && allowed=$THROUGHPUT_BUDGET
    args=(--data "$DATA" --out "$OUT" --time-budget $((allowed * 2 / 3)))
    [ $SMOKE = 1 ] && args+=(--smoke)
    run_within "$allowed" "$PY" "$REPO/bench/gpu_throughput.py" "${args[@]}"
fi

# --- ImageNet-shaped step ----------------------------------------------------------------
if [ $RUN_IMAGENET = 0 ]; then
    skip imagenet "--skip-imagenet"
elif [ "$(left)" -lt 40 ]; then
    skip imagenet "$(left) s left"
else
    begin imagenet
    allowed=$(($(left) - 5))
    args=(--tree /tmp/svp-imagenet --make "${IMAGENET_IMAGES:-12800}" --out "$OUT" --time-budget $((allowed * 2 / 3)))
    [ $SMOKE = 1 ] && args=(--smoke --out "$OUT")
    run_within "$allowed" "$PY" "$REPO/bench/gpu_imagenet.py" "${args[@]}"
fi
