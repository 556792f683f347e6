# The two commands of the README, plus the environment they share.
PY := .venv/bin/python

.PHONY: setup demo test test-fast lint
setup:  ## create .venv (idempotent; the first run compiles mmcv, ~15 min on 2 cores)
	bash tools/setup_env.sh
demo: setup  ## train + test a small semantic model and a small Mask R-CNN, print mIoU/AP
	$(PY) tools/demo.py
test: setup  ## the test suite (what CI runs)
	$(PY) -m pytest tests
test-fast: setup  ## the unit tests only (tests not marked slow)
	$(PY) -m pytest -m "not slow" tests
lint: setup  ## ruff (pyproject.toml's rules) on the code and tests; CI runs it before the tests
	.venv/bin/ruff check projects tools tests configs
