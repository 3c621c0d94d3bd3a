"""Which device to compute on (the fastest one this machine has), whether bf16 pays there,
and how to name it in a record."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

PIN = "GENTUT_DEVICE"  # set it (e.g. to "cpu") to pin what "auto" means on this machine


def device(name: str | torch.device = "auto") -> torch.device:
    """Return `name` as a device, where "auto" is $GENTUT_DEVICE if set, else the fastest:
    cuda, else mps, else cpu. The test command pins it to the CPU, on which the chapters'
    committed outputs were recorded, so that nbval passes on a machine with a GPU too."""
    if str(name) == "auto":
        name = os.environ.get(PIN) or "auto"
    if str(name) != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def fast_bf16(dev: torch.device) -> bool:
    """Whether bfloat16 autocast runs in hardware on `dev` (a CUDA GPU, or a CPU with
    AVX-512 BF16 or AMX); elsewhere it is emulated and slower than float32."""
    if dev.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if dev.type == "cpu":
        try:  # a private oneDNN query: a torch build without it gets float32
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def machine(name: str | torch.device = "cpu") -> str:
    """Device `name`, in words, for records of where something was measured or trained: the
    CPU's model, cores and threads, or the GPU's name; and the torch version."""
    dev = device(name)
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name(dev)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.exists():
        names = [line.split(":", 1)[1].strip() for line in info.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return (f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, "
            f"torch {torch.__version__}")
