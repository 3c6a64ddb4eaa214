"""SHA-256 identities: of files (leakage checks, manifests, checkpoints, exports), of text
(cache keys) and of JSON-able data independent of key order (config hashes)."""

import hashlib
import json
from pathlib import Path


def file_sha256(path: Path | str, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def json_sha256(obj: object) -> str:
    """SHA-256 of ``obj`` serialised with sorted keys (non-JSON values via ``str``)."""
    return text_sha256(json.dumps(obj, sort_keys=True, default=str))
