"""Which device to compute on: the fastest one this machine has."""

from __future__ import annotations

import torch


def device(name: str | torch.device = "auto") -> torch.device:
    """Return `name` as a device, where "auto" picks cuda, else mps, else cpu."""
    if str(name) != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
