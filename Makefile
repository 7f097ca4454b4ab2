# The README's commands. `make demo` and `make test` create the environment when it is missing.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU build of torch where no GPU is present; where one is, pip's default (CUDA) build. A cluster
# image's own torch is kept because the package asks for a range, never a pin (see pyproject.toml).
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
TORCH_SPEC ?= $(if $(HAS_GPU),torch>=2.3,torch==2.13.0)
SPACE ?= search_spaces/quickstart.yaml
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: env reference browser demo test bench clean

env: $(VENV)/.installed

# Reference implementations for tests/unit/metrics/test_references.py (pytorch-fid, torchvision's
# Inception-v3, torch-fidelity), in a folder of their own that only that test's subprocess puts on
# its path: PyPI's torchvision does not import beside the CPU build of torch
# (tests/unit/metrics/reference_quality.py says why). torchvision 0.28.0 is torch 2.13.0's release.
REFERENCE_SPEC ?= torchvision==0.28.0 pytorch-fid==0.3.0 torch-fidelity==0.4.0

reference: $(VENV)/reference/.installed

$(VENV)/reference/.installed: Makefile $(VENV)/.installed
	rm -rf $(VENV)/reference
	$(PY) -m pip install -q --no-deps --target $(VENV)/reference $(REFERENCE_SPEC)
	@touch $@

# The report's browser tests drive Debian's Chromium; install it (as root or with sudo) if missing.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(foreach spec,$(TORCH_SPEC),"$(spec)")
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

demo: env
	$(VENV)/bin/disentune sweep $(SPACE) --force

# pytest's exit status 5 (no test collected) is a failure here, never a pass.
# A crash in native code prints the Python stacks of every thread (faulthandler) before the exit status.
test: env reference browser
	@PYTHONFAULTHANDLER=1 $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: env
	$(PY) bench/trial_time_split.py reports/quickstart

clean:
	rm -rf $(VENV) reports/quickstart
