"""Content hashes of JSON-able data, independent of key order (config hashes, cache keys)."""
import hashlib
import json


def json_sha256(obj):
    """SHA-256 of ``obj`` serialised with sorted keys (non-JSON values via ``str``)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
