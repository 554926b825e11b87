# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
# torch==2.13.0 is installed first: a bare `torch` requirement would pull a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
DEMO_OUT ?= outputs/demo
QUICK_OUT ?= outputs/quick
SCALABEL_VENV ?= .venv-scalabel
# No wheel cache: a fresh machine gains nothing from it, and it would hold a second copy of every
# downloaded wheel (torch alone is ~180 MB) on a disk that CI once filled (stop 37: ENOSPC).
PIP := python -m pip --no-cache-dir

.PHONY: install browser scalabel demo quick-demo world-demo test test-fast lint docs clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/$(PIP) install --quiet --upgrade pip
	$(BIN)/$(PIP) install --quiet $(TORCH)
	$(BIN)/$(PIP) install --quiet -e '.[dev,preview]'
	touch $@

# Headless Chromium for the preview's browser tests: Debian's chromium + chromium-driver through apt
# when missing (as root, or with passwordless sudo). Nothing downloads a browser at run time; where
# they cannot be installed the browser tests skip and say why.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "make: no chromium/chromedriver and no apt-get: the browser tests will skip" >&2; \
	elif [ "$$(id -u)" != 0 ] && ! sudo -n true 2>/dev/null; then \
	  echo "make: no chromium/chromedriver; as root run: apt-get install chromium chromium-driver" >&2; \
	else \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  echo "make: installing Debian's chromium and chromium-driver (browser tests)" >&2; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

# The official Scalabel loader (scalabel 0.3.1, written for pydantic 1) in a venv of its own, for the
# test that drivesim's label files load in it (drivesim uses pydantic 2). About 40 s and 550 MB.
scalabel: $(SCALABEL_VENV)/.installed

$(SCALABEL_VENV)/.installed:
	$(PYTHON) -m venv $(SCALABEL_VENV)
	$(SCALABEL_VENV)/bin/$(PIP) install --quiet scalabel==0.3.1 'pydantic<2'
	touch $@

# The example scenarios end to end (key frames, rollout to each duration, 30 fps, temporal decoder,
# 4x upsampler to 512x1024) into a Parquet catalog; resumable, prints s/frame by stage.
demo: install
	$(BIN)/drivesim generate --scenario scenarios --catalog --out $(DEMO_OUT)

# Key frames only (7.5 fps), a few minutes: one clip per scenario into a folder.
quick-demo: install
	$(BIN)/drivesim generate --scenario scenarios --out $(QUICK_OUT)

world-demo: install
	$(BIN)/drivesim world render --scenario scenarios --out outputs/world

test: install browser scalabel
	$(BIN)/python -m pytest -q

# Local work: every test but those marked slow (about a minute's worth of the suite's eight).
test-fast: install browser scalabel
	$(BIN)/python -m pytest -q -m "not slow"

# Style, formatting and types: ruff's linter, ruff's formatter (check only) and pyright in basic mode
# (pyproject.toml [tool.pyright]).
lint: install
	$(BIN)/ruff check drivesim conditioners scripts tests
	$(BIN)/ruff format --check drivesim conditioners scripts tests
	$(BIN)/pyright

# The docs site (mkdocs-material + mkdocstrings) into site/; --strict fails on any warning.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

clean:
	rm -rf $(VENV) outputs .pytest_cache site
