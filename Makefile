# Two entry points (see README.md): `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO := demo

.PHONY: demo test install lint clean-demo

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned to the builds this machine holds, so the project's ranges take them
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The original project's story on the generated demo dataset: audit (fails on the planted
# traps), fix with splitsafe's tools, audit again (passes), train, check where the model looks.
# Everything it writes is under demo/ and reports/ (both regenerated on each run).
demo: $(VENV)/.installed
	rm -rf $(DEMO) reports/before reports/after reports/model
	$(PY) -m data demo $(DEMO)
	@echo "== 1. audit the dataset as delivered: the planted traps must fail"
	@if $(PY) -m pytest audits/ --dataset $(DEMO)/movies --report-dir reports/before -q --tb=no; \
	  then echo "error: the audit missed the planted traps"; exit 1; \
	  else echo "== audit failed as expected: reports/before/audit.html"; fi
	@echo "== 2. fix: split by scene, crop the border lines, upsample the smallest class"
	$(PY) -m data split $(DEMO)/movies --by group --seed 0 --materialize $(DEMO)/split
	$(PY) -m data crop-borders $(DEMO)/split $(DEMO)/fixed --keep-size
	$(PY) -m data upsample $(DEMO)/fixed --where label=ocean-voyage --where split=train \
	  --where origin=frame --ops invert,log
	@echo "== 3. audit the fixed dataset: passes"
	$(PY) -m pytest audits/ --dataset $(DEMO)/fixed --report-dir reports/after -q
	@echo "== 4. train (the audit runs again as the gate); from scratch: no weights download here"
	$(PY) -m train --dataset $(DEMO)/fixed --arch resnet18 --no-pretrained --sizes 64 96 \
	  --epochs 0 2 --lr 1e-2 --out $(DEMO)/models --report-dir reports
	@echo "== 5. where does the model look? (Grad-CAM edge focus per class)"
	$(PY) -m pytest audits/ --dataset $(DEMO)/fixed --model $(DEMO)/models/export.pkl \
	  --report-dir reports/model -q
	@echo "== done: reports/before/audit.html, reports/after/audit.html, reports/training.html"

test: $(VENV)/.installed
	$(PY) -m pytest tests -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
