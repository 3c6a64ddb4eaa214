# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python
PIP ?= $(PYTHON) -m pip

.PHONY: install install-test demo test

install:
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -r requirements-paddleclas.txt
	$(PIP) install --no-deps -e .

install-test: install
	$(PIP) install -r requirements-test.txt

demo: install
	$(PYTHON) tools/make_demo_data.py --out demo_data/images
	$(PYTHON) tools/split_dataset.py --image-root demo_data/images --out demo_data/lists --classes normal,lesion
	$(PYTHON) tools/train.py -c configs/demo.yaml
	$(PYTHON) tools/eval.py -c configs/demo.yaml -o Global.pretrained_model=output/demo/best_model.pdparams \
		-o DataLoader.Eval.dataset.cls_label_path=demo_data/lists/test_list.txt

test: install-test
	$(PYTHON) -m pytest -q tests
