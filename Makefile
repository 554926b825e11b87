# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
# torch==2.13.0 is installed first: a bare `torch` requirement would pull a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
DEMO_OUT ?= outputs/demo

.PHONY: install demo world-demo test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: install
	$(BIN)/drivesim generate --scenario scenarios --out $(DEMO_OUT)

world-demo: install
	$(BIN)/drivesim world render --scenario scenarios --out outputs/world

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check drivesim conditioners scripts tests

clean:
	rm -rf $(VENV) outputs .pytest_cache
