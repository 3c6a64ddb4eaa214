"""Static engine: ops run serially (FLAGS_new_executor_serial_run) vs side by side, ResNet-18 128 px batch 16.

python benchmarks/executor_serial.py serial|parallel  (one process per mode; prints seconds per step)
"""

import sys
import time

import numpy as np
import paddle

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from paddle_dx.utils.device import select_device

select_device("cpu", 2)
import paddle_dx.engine.static_step as ss
from paddle_dx.engine.static_step import StaticTrainStep
from paddle_dx.models import build_model

arch = {"name": "ResNet18", "class_num": 2, "pretrained": False, "freeze": "none", "dropout": 0.0}
m = build_model(arch, [3, 128, 128])
step = StaticTrainStep(
    m,
    arch,
    [3, 128, 128],
    [{"CELoss": {"weight": 1.0}}],
    {"name": "Adam", "lr": 1e-4, "weight_decay": 0.0, "momentum": 0.9, "grad_clip": None, "lr_schedule": "constant"},
    "none",
    1e-4,
    [0, 1] * 8,
)
step.push()
x = paddle.randn([16, 3, 128, 128])
y = paddle.to_tensor(np.array([0, 1] * 8, "int64"))
import contextlib

serial = ss._serial_ops
mode = sys.argv[1]
ss._serial_ops = serial if mode == "serial" else contextlib.nullcontext
for r in range(2):
    step(x, y)
    t = time.perf_counter()
    for _ in range(8):
        step(x, y)
    print(mode, round((time.perf_counter() - t) / 8, 3), flush=True)
