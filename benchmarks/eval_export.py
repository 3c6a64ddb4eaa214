"""What a validation through Paddle Inference costs per evaluation (``Global.eval_engine``
inference): exporting the weights and creating the predictor, then 75 images (the brain study's
validation list), for the first evaluation and later ones. The eval-mode copy is converted to a
static program at the first evaluation only (engine/eval_backend.py, ``EvalExport``); later ones
give it new weights, as each training epoch does.

    python benchmarks/eval_export.py [--arch ResNet50 EfficientNetLite0] [--evaluations 3]

Writes benchmarks/results/eval_export.md. One process per network, in this order.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import machine, run_worker, threads, write_results  # noqa: E402

IMAGES, BATCH, SIZE = 75, 32, 224


def worker(arch, evaluations):
    import numpy as np

    from paddle_dx.engine.eval_backend import EvalExport
    from paddle_dx.models import build_model
    from paddle_dx.utils.device import select_device

    select_device("cpu", threads())
    model = build_model({"name": arch, "class_num": 3, "pretrained": False}, [3, SIZE, SIZE])
    export = EvalExport([3, SIZE, SIZE], None)
    x = np.random.default_rng(0).standard_normal((IMAGES, 3, SIZE, SIZE)).astype("float32")
    out = []
    for _ in range(int(evaluations)):
        for p in model.parameters():  # new weights, as after an epoch of training
            if not p.stop_gradient:
                p.set_value(p.numpy() * 1.001)
        start = time.perf_counter()
        session = export.session(model)
        ready = time.perf_counter() - start
        for i in range(0, IMAGES, BATCH):
            session.run(x[i : i + BATCH])
        out.append({"export_s": ready, "total_s": time.perf_counter() - start})
        del session
    print(json.dumps({"evaluations": out}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["ResNet50", "EfficientNetLite0"])
    parser.add_argument("--evaluations", type=int, default=3)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker)
    started = machine()
    rows = []
    for arch in args.arch:
        result = run_worker(__file__, [arch, args.evaluations])
        for k, r in enumerate(result["evaluations"], 1):
            rows.append([arch, k, f"{r['export_s']:.2f}", f"{r['total_s']:.2f}"])
    write_results(
        "eval_export",
        f"Validation through Paddle Inference: export + predictor per evaluation, {SIZE} px",
        " ".join(["python benchmarks/eval_export.py"] + sys.argv[1:]),
        ["network", "evaluation", "export + predictor, s", f"with {IMAGES} images (batch {BATCH}), s"],
        rows,
        notes=[
            "evaluation 1 converts the eval-mode copy to a static program; later evaluations give it "
            "new weights and only write them (paddle.jit.save) before creating the predictor",
            "random weights, 3 classes, random input batches already preprocessed",
        ],
        started=started,
        method="One process per network; each evaluation changes the weights first.",
    )


if __name__ == "__main__":
    main()
