"""retain_freed_memory: takes effect on glibc Linux and is idempotent; native_bf16 follows the CPU probes."""
import platform
import sys

import pytest
import torch

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


@pytest.mark.parametrize("avx512_bf16, amx, expected", [(False, False, False), (True, False, True), (False, True, True)])
def test_native_bf16_on_cpu_follows_the_cpu_probes(monkeypatch, avx512_bf16, amx, expected):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert runtime.native_bf16("cpu") is expected
    assert runtime.native_bf16(torch.device("cpu")) is expected


def test_native_bf16_without_probes_assumes_emulation(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert runtime.native_bf16("cpu") is False


def test_native_bf16_is_false_for_an_absent_cuda_and_other_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.native_bf16("cuda") is False
    assert runtime.native_bf16("meta") is False
