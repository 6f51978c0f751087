# Two entry points for a fresh machine with Python 3.11:
#   make demo   -> .venv + pinned dependencies + the project, then the main job on the embedded data
#   make test   -> the same environment, then the whole test suite
#   make test-fast -> the tests not marked slow (the edit loop); make lint -> ruff (pinned)
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fedadmet-installed

.PHONY: demo test test-fast lint install bench clean

$(STAMP): pyproject.toml requirements/lock.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements/lock.txt
	$(PY) -m pip install --quiet --no-build-isolation -c requirements/lock.txt -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/fedadmet demo

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check --no-cache .

bench: $(STAMP)
	$(PY) bench/featurize.py

clean:
	rm -rf $(VENV) .fedadmet-cache runs
