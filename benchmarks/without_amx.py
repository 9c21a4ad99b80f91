"""Run a command on this CPU with AMX denied: what a Sapphire Rapids (or newer) Xeon does on a kernel older
than 5.16, in a VM or container whose policy refuses AMX, and the closest thing here to an AVX-512 VNNI CPU
without AMX (the AMD EPYC and Ice Lake class).

Usage:
    python benchmarks/without_amx.py python benchmarks/peers.py --results-dir benchmarks/results/without-amx

Linux x86-64 gives a process AMX tile state only when it asks (arch_prctl ARCH_REQ_XCOMP_PERM). This script
installs a seccomp filter that answers that one request with EPERM, then execs the command; children inherit
the filter, so bench's worker processes are covered too. ONNX Runtime (MLAS) and OpenVINO (oneDNN) ask
before they pick AMX kernels and fall back to AVX-512 VNNI / BF16 when refused. Every other syscall, and
every other arch_prctl call, passes. edgefn's reports then say "AMX denied" beside the CPU flags.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys

from common import WRAPPER_VARIABLE

from edgefn.core.environment import ARCH_REQ_XCOMP_PERM, SYS_ARCH_PRCTL, linux_x86_64

_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2
_AUDIT_ARCH_X86_64 = 0xC000003E
_RET_ALLOW, _RET_ERRNO, _EPERM = 0x7FFF0000, 0x00050000, 1
# classic BPF opcodes: load a word of seccomp_data, jump if equal, return
_LD_W_ABS, _JEQ_K, _RET_K = 0x20, 0x15, 0x06
# offsets in struct seccomp_data: nr, arch, then the low word of args[0] (little endian)
_NR, _ARCH, _ARG0 = 0, 4, 16


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _insn(code: int, jump_true: int, jump_false: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jump_true, jump_false, k)


def deny_amx() -> None:
    """Refuse this process and its children AMX tile state, for good (a seccomp filter cannot be removed)."""
    if not linux_x86_64():
        raise SystemExit("without_amx.py: AMX permission is a Linux x86-64 mechanism")
    program = b"".join(
        [
            _insn(_LD_W_ABS, 0, 0, _ARCH),
            _insn(_JEQ_K, 0, 5, _AUDIT_ARCH_X86_64),  # another ABI: allow
            _insn(_LD_W_ABS, 0, 0, _NR),
            _insn(_JEQ_K, 0, 3, SYS_ARCH_PRCTL),  # another syscall: allow
            _insn(_LD_W_ABS, 0, 0, _ARG0),
            _insn(_JEQ_K, 0, 1, ARCH_REQ_XCOMP_PERM),  # another arch_prctl: allow
            _insn(_RET_K, 0, 0, _RET_ERRNO | _EPERM),
            _insn(_RET_K, 0, 0, _RET_ALLOW),
        ]
    )
    buffer = ctypes.create_string_buffer(program)
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or (
        libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0
    ):
        raise SystemExit(f"without_amx.py: seccomp refused: {os.strerror(ctypes.get_errno())}")


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    deny_amx()
    os.environ[WRAPPER_VARIABLE] = "benchmarks/without_amx.py"  # common.command_line names it
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
