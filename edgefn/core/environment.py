"""This machine as results record it: CPU model and SIMD flags (the one /proc/cpuinfo parser), cores, versions."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any

from edgefn.core.errors import ConfigError

# The flags that decide int8 / fp32 kernels, in the order reports list them.
CPU_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "neon",
    "asimd",
    "asimddp",
    "sve",
)
# Libraries whose versions shape results; each engine adds its own (`record_versions_of`, called by the engine
# registry, edgefn.runtime.engines, when the engine registers).
VERSIONED = (
    "edgefn",
    "torch",
    "transformers",
    "optimum",
    "optimum-onnx",
    "onnx",
    "tokenizers",
    "datasets",
    "scikit-learn",
    "numpy",
)
_ENGINE_LIBRARIES: list[str] = []


def read_cpuinfo() -> str:
    """The text of /proc/cpuinfo, or "" where there is none (macOS, Windows)."""
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def parse_cpuinfo(text: str) -> tuple[str | None, set[str]]:
    """The CPU model name and every flag of a /proc/cpuinfo text (x86 `flags`, Arm `Features`)."""
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key in ("flags", "Features"):
            flags.update(value.split())
    return model, flags


def cpu_mhz(cpuinfo: str | None = None) -> float | None:
    """The mean current clock of the cores in MHz (cpuinfo's "cpu MHz"), None where it is not reported."""
    text = read_cpuinfo() if cpuinfo is None else cpuinfo
    values = []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "cpu MHz":
            with contextlib.suppress(ValueError):
                values.append(float(value))
    return sum(values) / len(values) if values else None


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """Every flag this CPU (or the given cpuinfo text) reports."""
    return parse_cpuinfo(read_cpuinfo() if cpuinfo is None else cpuinfo)[1]


# Linux x86-64 (kernel 5.16+) hands a process AMX tile state only on request; the request is this syscall
# (benchmarks/without_amx.py refuses exactly it).
SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA = 158, 0x1023, 18


def linux_x86_64() -> bool:
    """Whether this is Linux on x86-64, the one platform with the AMX permission request."""
    return platform.system() == "Linux" and platform.machine() == "x86_64"


def amx_usable() -> bool:
    """Whether this process may use the AMX tiles its CPU lists: the kernel grants them on request, and an
    older kernel, a hypervisor or a seccomp policy refuses, so int8 and bf16 then run on AVX-512 (VNNI)."""
    import ctypes

    if not linux_x86_64():
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0


def cpu_info() -> dict[str, Any]:
    """CPU model name, architecture and the SIMD flags that matter for int8 / fp32 kernels; where the CPU
    lists AMX, whether this process may use it ("amx": "usable" or "denied")."""
    model, flags = parse_cpuinfo(read_cpuinfo())
    info: dict[str, Any] = {
        "model": model or platform.processor() or platform.machine(),
        "machine": platform.machine(),
        "flags": [f for f in CPU_FLAGS if f in flags],
    }
    if "amx_tile" in flags:
        info["amx"] = "usable" if amx_usable() else "denied"
    return info


def describe_cpu(cpu: dict[str, Any]) -> str:
    """One line for reports: the model and its flags, and a warning where the OS denies the listed AMX."""
    flags = ", ".join(cpu["flags"])
    if cpu.get("amx") == "denied":
        flags += "; AMX denied to this process, so int8 and bf16 run on AVX-512"
    return f"{cpu['model']} ({flags})"


def physical_cores() -> int:
    """Physical CPU cores (logical ones when psutil cannot tell)."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def check_threads(threads: int | None, field: str = "threads") -> None:
    """Refuse a thread count below 1 or above this machine's logical cores (oversubscription makes one
    prediction take tens of seconds and a bench hang)."""
    if threads is None:
        return
    cores = os.cpu_count() or 1
    if threads <= 0:
        raise ConfigError(field, f"must be a positive integer, got {threads}")
    if threads > cores:
        raise ConfigError(field, f"{threads} is more than this machine's {cores} logical cores")


def record_versions_of(*names: str) -> None:
    """Record the versions of these distributions too (an engine's libraries) in every later `library_versions`."""
    _ENGINE_LIBRARIES.extend(
        n for n in dict.fromkeys(names) if n not in VERSIONED and n not in _ENGINE_LIBRARIES
    )


def library_versions() -> dict[str, str]:
    """Python and the installed versions of the libraries that shape results (those of the engines registered)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in (*VERSIONED, *_ENGINE_LIBRARIES):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def machine_environment(threads: int | None) -> dict[str, Any]:
    """CPU model and flags, cores, memory, platform, Python, threads used and library versions."""
    import psutil

    return {
        "cpu": cpu_info(),
        "cores_physical": psutil.cpu_count(logical=False),
        "cores_logical": psutil.cpu_count(logical=True),
        "threads": threads,
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": library_versions(),
    }
