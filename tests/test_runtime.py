"""retain_freed_memory: takes effect on glibc Linux and is idempotent."""
import platform
import sys

import pytest

from flowcli import runtime


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_takes_effect_once_on_glibc(monkeypatch):
    monkeypatch.setattr(runtime, "_done", False)
    assert runtime.retain_freed_memory() is True
    assert runtime._done is True
    assert runtime.retain_freed_memory() is True  # the second call changes nothing


def test_reports_false_off_linux(monkeypatch):
    monkeypatch.setattr(runtime, "_done", False)
    monkeypatch.setattr(runtime.sys, "platform", "darwin")
    assert runtime.retain_freed_memory() is False
