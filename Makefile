# Two commands for a fresh machine (Python 3.11+): `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config/config.yaml
STAMP := $(VENV)/.installed

.PHONY: run test install lint clean bench

run: $(STAMP)
	$(BIN)/snakemake --cores all --resources gpu=1 --configfile $(CONFIG)

test: $(STAMP)
	$(BIN)/python -m pytest -ra

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

lint: $(STAMP)
	$(BIN)/snakemake --lint --cores 1
	$(BIN)/snakefmt --check Snakefile workflow/rules

clean:
	rm -rf results .snakemake
