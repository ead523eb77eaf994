# mimbench: `make bench` runs the benchmark on the embedded default, `make test` runs the tests.
# Both create .venv, install the project into it and make sure Fashion-MNIST is there first.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# The torch build this machine serves from its disk; override on other machines, e.g. TORCH_SPEC="torch torchvision".
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
FMNIST := /usr/share/datasets/fashion-mnist
# Known-good versions of the other dependencies (a clean resolve without them backtracks forever); CONSTRAINTS= to drop.
CONSTRAINTS ?= constraints.txt

.PHONY: setup data browser bench test lint clean constraints
setup: $(VENV)/.installed data

$(VENV)/.installed: setup.cfg pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip setuptools wheel
	$(PY) -m pip install $(TORCH_SPEC)
	$(PY) -m pip install -e '.[dev]' $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
	touch $@

# Rewrite constraints.txt from the current .venv (after a deliberate upgrade); torch's own build stays with TORCH_SPEC.
constraints:
	@{ sed -n '1,3p' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v -i -E '^(torch|torchvision|triton|nvidia-|cuda-)'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

# Debian's dataset-fashion-mnist when we are root; otherwise torchvision downloads it into the cache.
data: $(VENV)/.installed
	@if [ -f $(FMNIST)/t10k-images-idx3-ubyte.gz ]; then echo "Fashion-MNIST: $(FMNIST)"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  apt-get install -y dataset-fashion-mnist || (apt-get update && apt-get install -y dataset-fashion-mnist); \
	else $(PY) -c "from zoo.data import load_dataset as l; l('fashion_mnist','train'); l('fashion_mnist','test')"; fi

# Headless Chromium for the test that opens the HTML leaderboard: Debian's `chromium` when we are root. Without
# root the test skips and says why, except in CI (CI=true), where a missing browser fails it; as root, `make test`
# requires it (MIMBENCH_REQUIRE_CHROMIUM=1), so a failed install cannot pass unnoticed.
CHROMIUM := $(shell command -v chromium || command -v chromium-browser || command -v google-chrome)
browser:
	@if [ -n "$(CHROMIUM)" ]; then echo "Chromium: $(CHROMIUM)"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y chromium || (apt-get update && apt-get install -y chromium); \
	else echo "Chromium missing and not root: the HTML test will be skipped (install Debian's chromium)"; fi

bench: setup
	$(PY) run_bench.py

# The architecture contracts (.importlinter) and the linter run first: a layer violation fails the build.
test: setup browser
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	MIMBENCH_REQUIRE_CHROMIUM=$$([ "$$(id -u)" = "0" ] && echo 1 || echo 0) $(PY) -m pytest

lint: setup
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
