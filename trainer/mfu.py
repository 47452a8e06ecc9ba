"""Model FLOPs utilisation: achieved training FLOP/s over the hardware's peak.

Achieved FLOP/s = tokens/s x training FLOPs per token (``model.flops_per_token``).  The peak is a
dense bf16 tensor-core figure on known GPUs and an *assumption* on CPUs (stated in the run log and
docs/trainer.md); ``peak_flops`` in the config overrides both.
"""
from __future__ import annotations

import os

import torch

# dense (no sparsity) bf16 peak FLOP/s from the vendors' data sheets
GPU_PEAK_BF16 = {
    "H200": 989e12,
    "H100": 989e12,   # SXM; the PCIe card is 756e12
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
}

# CPU assumption: each core issues two 8-wide fp32 FMAs per cycle (AVX2: 32 FLOP/cycle) at 3 GHz.
CPU_FLOP_PER_CYCLE = 32
CPU_ASSUMED_HZ = 3.0e9


def cpu_peak_flops(threads: int | None = None) -> float:
    threads = threads or torch.get_num_threads() or os.cpu_count() or 1
    return threads * CPU_FLOP_PER_CYCLE * CPU_ASSUMED_HZ


def peak_flops(device: torch.device, override: float = 0.0) -> tuple[float, str]:
    """(peak FLOP/s, where the figure comes from)."""
    if override and override > 0:
        return float(override), "config peak_flops"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, value in GPU_PEAK_BF16.items():
            if key in name:
                return value, f"{name} dense bf16 data-sheet peak"
        return 0.0, f"unknown GPU {name!r}: set peak_flops to get MFU"
    threads = torch.get_num_threads()
    return cpu_peak_flops(threads), (f"assumed CPU peak: {threads} threads x {CPU_FLOP_PER_CYCLE} "
                                     f"FLOP/cycle x {CPU_ASSUMED_HZ / 1e9:g} GHz")


def mfu(tokens_per_s: float, flops_per_token: float, peak: float) -> float:
    return tokens_per_s * flops_per_token / peak if peak > 0 else float("nan")
