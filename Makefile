# Set-up and the two everyday commands. `make demo` and `make test` create the
# virtual environment on first use (torch's CPU build first, then the package).
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0

.PHONY: demo test test-all lint bench-core

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e '.[all]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/rationalrewards demo

test: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

test-all: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "slow or not slow"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks
