"""``manifest.json``: everything needed to obtain a run's result again, and to check it.

Written beside ``metrics.json`` at the end of every run: the resolved config and its hash,
the code (git commit, dirty files), the package versions, the device, the SHA-256 of each
list file and of every image used, the seed and the final metrics. ``tools/verify_run.py``
reruns a run from this file alone and compares the metrics.
"""

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

import paddle

import paddle_dx
from paddle_dx.config import config_hash
from paddle_dx.data.list_file import outside_root, read_list_file
from paddle_dx.engine.run_folder import BEST_MODEL, MANIFEST
from paddle_dx.utils.files import write_json
from paddle_dx.utils.hashing import file_sha256, text_sha256

MODES = ("Train", "Eval", "Test")
# package -> distributions that provide it (the first one installed is reported)
PACKAGES = {
    "paddle": ("paddlepaddle", "paddlepaddle-gpu"),
    "paddleclas": ("paddleclas",),
    "numpy": ("numpy",),
    "opencv": ("opencv-python-headless", "opencv-python", "opencv-contrib-python"),
    "sklearn": ("scikit-learn",),
}
# metrics.json keys that are results (the rest, e.g. skipped images, is reported separately)
RESULT_KEYS = ("history", "best_epoch", "best_metric", "val", "test", "stages")
SOURCE_DIRS = ("paddle_dx", "tools")
OUTPUT_FILES = (BEST_MODEL,)


def _git(args, cwd):
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return out.stdout.rstrip("\n")


def git_state(source: Path | str = Path(paddle_dx.__file__).resolve().parent) -> dict:  # noqa: B008 - computed once, on purpose
    """Commit and dirty flag of the checkout paddle_dx runs from; None values when it is not one."""
    try:
        top = _git(["rev-parse", "--show-toplevel"], source).strip()
        commit = _git(["rev-parse", "HEAD"], top).strip()
        dirty = _git(["status", "--porcelain", "--untracked-files=no", "--", *SOURCE_DIRS], top).splitlines()
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        return {"commit": None, "dirty": None, "note": f"not a git checkout ({str(exc)[:120] or type(exc).__name__})"}
    return {"commit": commit, "dirty": bool(dirty), "dirty_files": [line[3:] for line in dirty][:50]}


def package_versions() -> dict[str, str | None]:
    versions = {"python": platform.python_version(), "paddle_dx": paddle_dx.__version__}
    for name, dists in PACKAGES.items():
        versions[name] = None
        for dist in dists:
            try:
                versions[name] = f"{importlib.metadata.version(dist)} ({dist})"
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def device_info(device: str, num_threads: int) -> dict:
    info = {
        "device": device,
        "cuda_build": paddle.is_compiled_with_cuda(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "num_threads": num_threads or "paddle default",
        "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CPU_NUM") if k in os.environ},
    }
    if device == "gpu":
        info["gpu"] = paddle.device.cuda.get_device_name()
        info["cudnn_deterministic"] = paddle.get_flags(["FLAGS_cudnn_deterministic"])["FLAGS_cudnn_deterministic"]
    return info


def data_fingerprint(config: dict, hashes: dict[str, str]) -> tuple[dict, dict[str, str]]:
    """Per split: the list file's SHA-256 and one digest over the (image SHA-256, label) pairs
    actually used, which does not depend on where the dataset is stored."""
    out, images = {}, {}
    for mode in MODES:
        ds = config["DataLoader"][mode]["dataset"]
        if not ds["cls_label_path"] or not Path(ds["cls_label_path"]).is_file():
            continue
        samples = read_list_file(ds["cls_label_path"], ds["image_root"], config["Arch"]["class_num"])
        used = sorted(f"{hashes[p]} {label}" for p, label in samples if p in hashes)
        out[mode] = {
            "list_file": str(ds["cls_label_path"]),
            "list_sha256": file_sha256(ds["cls_label_path"]),
            "images": len(used),
            "not_used": len(samples) - len(used),
            "images_sha256": text_sha256("\n".join(used)),
            "outside_image_root": outside_root(samples, ds["image_root"]),
        }
        images.update({p: hashes[p] for p, _ in samples if p in hashes})
    return out, images


def output_hashes(output_dir: Path | str) -> dict[str, str]:
    """SHA-256 of the run's weight files, so a best model swapped or overwritten later (e.g. by a
    second training into the same folder) is detectable (tools/verify_run.py checks them)."""
    return {name: file_sha256(Path(output_dir) / name) for name in OUTPUT_FILES if (Path(output_dir) / name).is_file()}


def build_manifest(config: dict, device: str, hashes: dict[str, str], result: dict) -> dict:
    splits, images = data_fingerprint(config, hashes)
    return {
        "paddle_dx_manifest": 1,
        "seed": config["Global"]["seed"],
        "config_hash": config_hash(config),
        "config": config,
        "git": git_state(),
        "versions": package_versions(),
        "platform": platform.platform(),
        "device": device_info(device, config["Global"]["num_threads"]),
        "command": sys.argv,
        "data": splits,
        "image_sha256": images,
        "skipped_images": result.get("skipped_images", []),
        "final_metrics": {k: result[k] for k in RESULT_KEYS if k in result},
        "config_changes": result.get("config_changes", []),  # resumes with Global.allow_config_change
    }


def write_manifest(output_dir: Path | str, config: dict, device: str, hashes: dict[str, str], result: dict) -> dict:
    """Write ``output_dir/manifest.json``; return its dict."""
    manifest = build_manifest(config, device, hashes, result)
    manifest["outputs_sha256"] = output_hashes(output_dir)
    write_json(Path(output_dir) / MANIFEST, manifest)
    return manifest
