"""Atomic writes leave files a colleague can read: mode from the umask, not mkstemp's 0600."""

import stat

from paddle_dx.utils import files


def test_atomic_writes_follow_the_umask(tmp_path, monkeypatch):
    for umask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        monkeypatch.setattr(files, "_UMASK", umask)
        target = tmp_path / f"metrics_{umask:o}.json"
        files.write_json(target, {"a": 1})
        assert stat.S_IMODE(target.stat().st_mode) == mode
