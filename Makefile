# Two commands for a fresh machine (Python 3.11+): `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config/config.yaml
STAMP := $(VENV)/.installed

.PHONY: run test test-fast install lint clean bench

# svp reads the config first: Snakemake parses a --configfile before the Snakefile runs,
# and answers a file it cannot read (not UTF-8, a folder) with its own traceback and a YAML
# error without the line; `svp check-config` names the file, the line and the fix.
run: $(STAMP)
	$(BIN)/svp check-config $(CONFIG) > /dev/null
	$(BIN)/snakemake --cores all --resources gpu=1 --configfile $(CONFIG)

# The whole suite, what CI runs (.ci/run); the SLURM test installs SLURM with apt-get
# where it runs as root, and skips saying why elsewhere.
test: $(STAMP)
	$(BIN)/python -m pytest

# For development: all but the tests marked `workflow` (Snakemake end to end, the SLURM
# cluster), which take most of `make test`'s time. Under 2 minutes on 2 cores.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not workflow"

install: $(STAMP)

# Reinstall when the project's dependencies change.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[test]'
	touch $(STAMP)

# Every benchmark of BENCHMARKS.md (under 15 minutes on 2 cores); a copy of the output in results/bench/.
bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# Every rule runs the `svp` command of the one environment Snakemake runs in (`make
# install`; environment.yml builds the same one for conda users), so no rule names a conda
# environment or container of its own, and Snakemake's lint asking for one fires on every
# rule. That one lint is filtered out; any other lint, or a workflow that does not load,
# fails with Snakemake's whole output. (`--lint json` would be easier to filter, but
# Snakemake 9's command line prints text whatever it is given.)
IGNORED_LINT := Specify a conda environment or container for each rule.
lint: $(STAMP)
	@output=$$($(BIN)/snakemake --lint --cores 1 2>&1); status=$$?; \
	others=$$(printf '%s\n' "$$output" | grep '^ *\* ' | grep -vF '$(IGNORED_LINT)'); \
	if [ $$status -ne 0 ] && { [ -n "$$others" ] || ! printf '%s\n' "$$output" | grep -qF '$(IGNORED_LINT)'; }; then \
		printf '%s\n' "$$output"; exit 1; \
	fi; \
	echo "snakemake --lint: clean but for the lint the Makefile ignores: $(IGNORED_LINT)"
	$(BIN)/snakefmt --check Snakefile workflow/rules

clean:
	rm -rf results .snakemake
