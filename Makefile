# The two commands of the README, plus the environment they share.
PY := .venv/bin/python

.PHONY: setup demo test
setup:  ## create .venv (idempotent; the first run compiles mmcv, ~15 min on 2 cores)
	bash tools/setup_env.sh
demo: setup  ## train + test a small semantic model and a small Mask R-CNN, print mIoU/mAP
	$(PY) tools/demo.py
test: setup  ## the test suite
	$(PY) -m pytest tests
