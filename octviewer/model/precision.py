"""Which arithmetic the network runs in: exact fp32, or bf16 where the hardware does bf16 natively.

bf16 autocast halves the bytes every convolution moves and, on CPUs with bf16 dot-product
instructions (AVX512_BF16, AMX_BF16), doubles the multiply-adds per cycle (the 2-core development
machine's figures, speed and agreement with fp32 on a held-out cohort, are in docs/benchmarks.md).
The classifier (pooling, logit, CAM) stays in fp32 (``networks._classify``). On CPUs without those instructions
oneDNN emulates bf16 and the same network measured 4x *slower* than fp32, so "auto" never picks
bf16 there. Where the flags cannot be read (not Linux), "auto" stays at fp32: the safe choice.
CUDA GPUs run bf16 on their tensor cores; MPS stays fp32. Torch-free, so the viewer's menus can
ask what this machine offers before torch is loaded.
"""

from __future__ import annotations

import functools
from pathlib import Path

PRECISIONS = ("auto", "fp32", "bf16")
#: CPU flags (as /proc/cpuinfo spells them) that mean bf16 dot products run in hardware
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpu_flags(cpuinfo: str) -> set[str]:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16(cpuinfo_path: str = "/proc/cpuinfo") -> bool:
    """True when this CPU has bf16 dot-product instructions (read from the kernel's CPU flags)."""
    try:
        text = Path(cpuinfo_path).read_text(errors="replace")
    except OSError:
        return False
    return any(flag in _cpu_flags(text) for flag in NATIVE_BF16_FLAGS)


def split_choice(device: str, precision: str = "auto") -> tuple[str, str]:
    """A device choice as the Device menu and the settings store it -> (device, precision):
    "cpu-fp32" -> ("cpu", "fp32"), "cpu" -> ("cpu", precision), "cuda:1" -> ("cuda:1", precision)."""
    name, dash, suffix = str(device).partition("-")
    if dash and suffix in PRECISIONS:
        return name, suffix
    return str(device), precision


def resolve_precision(requested: str | None, device) -> str:
    """"auto"/None -> "bf16" where it is native (CUDA, or a CPU with bf16 instructions), else "fp32";
    "fp32" and "bf16" are taken as asked (bf16 on MPS is refused: autocast there is not supported)."""
    requested = requested or "auto"
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; choose from {', '.join(PRECISIONS)}")
    if requested != "auto":
        if requested == "bf16" and device.type not in ("cpu", "cuda"):
            raise ValueError(f"bf16 is offered on CPUs and CUDA GPUs, not on {device.type}")
        return requested
    if device.type == "cuda":
        return "bf16"
    if device.type == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def precision_words(precision: str) -> str:
    """A precision in the viewer's words: "exact fp32", "bf16" (the Device menu, the results panel)."""
    return "exact fp32" if precision == "fp32" else precision


def device_label(device, precision: str) -> str:
    """What the viewer shows for a device and precision: "CPU (bf16)", "CPU (exact fp32)", "CUDA (bf16)"."""
    kind = str(device).split(":")[0]
    name = {"cpu": "CPU", "cuda": "CUDA", "mps": "MPS"}.get(kind, kind)
    return f"{name} ({precision_words(precision)})"


__all__ = ["NATIVE_BF16_FLAGS", "PRECISIONS", "cpu_has_native_bf16", "device_label", "precision_words",
           "resolve_precision", "split_choice"]
