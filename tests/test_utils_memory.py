"""utils/memory.py: glibc keeps freed memory for the next training step (select_device sets it)."""

import ctypes
import platform

import pytest

from paddle_dx.utils import device, memory


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(memory, "_applied", None)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_takes_both_settings_and_select_device_applies_them(fresh, monkeypatch):
    calls = []
    real = ctypes.CDLL

    class Recording:  # glibc itself, with mallopt's arguments and answers recorded
        def __init__(self, name):
            self._lib = real(name)
            self.gnu_get_libc_version = self._lib.gnu_get_libc_version

        def mallopt(self, param, value):
            answer = self._lib.mallopt(param, value)
            calls.append((param, value, answer))
            return answer

    monkeypatch.setattr(memory.ctypes, "CDLL", Recording)
    assert device.select_device("cpu") == "cpu"
    assert calls == [(memory.M_MMAP_THRESHOLD, 32 * 1024 * 1024, 1), (memory.M_TRIM_THRESHOLD, 2**31 - 1, 1)]
    assert memory.keep_freed_memory() and len(calls) == 2  # once per process


def test_a_c_library_without_glibc_mallopt_is_left_alone(fresh, monkeypatch):
    class Musl:  # no gnu_get_libc_version: not glibc, its mallopt parameters differ
        def mallopt(self, param, value):
            raise AssertionError("mallopt called on a non-glibc C library")

    monkeypatch.setattr(memory.ctypes, "CDLL", lambda name: Musl())
    assert memory.keep_freed_memory() is False


def test_a_refusing_mallopt_is_reported_not_applied(fresh, monkeypatch):
    class Refusing:
        gnu_get_libc_version = staticmethod(lambda: b"2.99")

        def mallopt(self, param, value):
            return 0

    monkeypatch.setattr(memory.ctypes, "CDLL", lambda name: Refusing())
    assert memory.keep_freed_memory() is False
