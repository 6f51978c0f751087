# Two entry points for a fresh machine with Python 3.11:
#   make demo   -> .venv + pinned dependencies + the project, then the main job on the embedded data
#   make test   -> the same environment, then the whole test suite
#   make test-fast -> the tests not marked slow (the edit loop); make lint -> ruff (pinned)
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fedadmet-installed

.PHONY: demo test test-fast lint install bench clean ship-model

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

# the shipped base model (docs/MODEL.md): train blend x1 on the whole embedded catalog (16 min on
# 2 busy cores), then pack it into models/ (gzipped boosters, training split, manifest, model card)
SHIP_DIR := models/fedadmet-base-1.1
ship-model: $(STAMP)
	$(VENV)/bin/fedadmet admet train --out .fedadmet-cache/ship/train --model blend --ensemble 1
	rm -rf $(SHIP_DIR)
	$(VENV)/bin/fedadmet admet pack .fedadmet-cache/ship/train --out $(SHIP_DIR)

bench: $(STAMP)
	$(PY) bench/featurize.py

clean:
	rm -rf $(VENV) .fedadmet-cache runs
