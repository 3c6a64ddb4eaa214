# Two commands on a fresh machine: `make demo` and `make test`.
# GPU: install paddlepaddle-gpu first, then `make install EXTRAS=[onnx,imagenet]` (no CPU wheel beside it).
PYTHON ?= python
PIP ?= $(PYTHON) -m pip
EXTRAS ?= [cpu,onnx,imagenet]

.PHONY: install install-test demo lint test test-fast reproduce

install:
	$(PIP) install -c constraints.txt -e ".$(EXTRAS)"
	$(PIP) install --no-deps -r requirements-paddleclas.txt

install-test: install
	$(PIP) install -r requirements-test.txt

demo: install
	$(PYTHON) -m paddle_dx make-demo-data --out demo_data/images
	$(PYTHON) -m paddle_dx split --image-root demo_data/images --out demo_data/lists --classes normal,lesion
	$(PYTHON) -m paddle_dx train -c demo -o Global.overwrite_output_dir=true
	$(PYTHON) -m paddle_dx eval -c demo -o Global.pretrained_model=output/demo/best_model.pdparams \
		-o DataLoader.Eval.dataset.cls_label_path=demo_data/lists/test_list.txt

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

test: install-test lint
	$(PYTHON) -m pytest -q tests

# The edit-test loop (after one `make install-test`): lint and the tests not marked slow, under 2 minutes.
test-fast: lint
	$(PYTHON) -m pytest -q -m "not slow" tests

# Rerun the studies whose reports are committed under results/, one study after the other
# (hours on 2 CPU cores; each study prints and reports its wall time): `make reproduce STUDY=brain`
# for one, STUDIES="brain pcam" for some; data from ../shared/datasets, override with DATA=DIR.
reproduce: install
	DATA=$(or $(DATA),../shared/datasets) PYTHON=$(PYTHON) bash results/reproduce_all.sh $(or $(STUDY),$(STUDIES))
