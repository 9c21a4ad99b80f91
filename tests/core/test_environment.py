"""The machine record: AMX usability, detected per process, and the CPU line reports print."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from edgefn.core.environment import cpu_flags, cpu_info, describe_cpu

WITHOUT_AMX = Path(__file__).resolve().parents[2] / "benchmarks" / "without_amx.py"
PROBE = """
import ctypes, json
from edgefn.core.environment import amx_usable, cpu_info, describe_cpu
libc = ctypes.CDLL(None, use_errno=True)
fs_base = ctypes.c_ulong()
print(json.dumps({
    "amx_usable": amx_usable(),
    "cpu": cpu_info(),
    "line": describe_cpu(cpu_info()),
    "get_fs": libc.syscall(158, 0x1003, ctypes.byref(fs_base)),  # another arch_prctl must still pass
}))
"""
linux_x86 = pytest.mark.skipif(
    platform.system() != "Linux" or platform.machine() != "x86_64", reason="AMX permission is Linux x86-64"
)


def _probe(*wrapper: str) -> dict:
    out = subprocess.run([*wrapper, sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_describe_cpu_warns_only_where_amx_is_denied():
    """A CPU line lists the flags, and adds a warning only where the OS refused the AMX the CPU lists."""
    cpu = {"model": "Xeon", "flags": ["avx512_vnni", "amx_int8"]}
    assert describe_cpu(cpu) == "Xeon (avx512_vnni, amx_int8)"
    assert describe_cpu({**cpu, "amx": "usable"}) == "Xeon (avx512_vnni, amx_int8)"
    assert describe_cpu({**cpu, "amx": "denied"}).endswith(
        "; AMX denied to this process, so int8 and bf16 run on AVX-512)"
    )


@linux_x86
def test_without_amx_denies_amx_and_nothing_else():
    """Under benchmarks/without_amx.py the AMX request fails and is recorded; other arch_prctl calls pass."""
    seen = _probe(sys.executable, str(WITHOUT_AMX))
    assert seen["amx_usable"] is False
    assert seen["get_fs"] == 0
    if "amx_tile" in cpu_flags():
        assert seen["cpu"]["amx"] == "denied"
        assert "AMX denied" in seen["line"]
    else:
        assert "amx" not in seen["cpu"]


@linux_x86
@pytest.mark.skipif("amx_tile" not in cpu_flags(), reason="this CPU lists no AMX")
def test_amx_is_usable_where_listed_and_not_denied():
    """Where the CPU lists AMX, an ordinary process is granted it and the record says so."""
    seen = _probe()
    assert seen["amx_usable"] is True
    assert seen["cpu"]["amx"] == "usable"
    assert cpu_info()["amx"] == "usable"
