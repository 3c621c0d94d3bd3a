"""Shared fixtures: the real data sets, loaded once per session from GENTUT_DATA."""

import os
from pathlib import Path

import pytest
import torch

from gentut import data

# A checkout keeps the offline copies beside it (see ../shared/datasets/README.md).
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
os.environ.setdefault("GENTUT_DATA", str(SHARED))
# The chapters' committed outputs were recorded on the CPU: pin "auto" there for nbval's
# kernels too (they inherit this environment), so that the check passes on a GPU machine.
os.environ.setdefault("GENTUT_DEVICE", "cpu")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def mnist() -> data.Dataset:
    return data.load("mnist")


@pytest.fixture(scope="session")
def mnist_test() -> data.Dataset:
    return data.load("mnist", "test")


@pytest.fixture(scope="session")
def fashion() -> data.Dataset:
    return data.load("fashion")


@pytest.fixture(scope="session")
def raw_mnist() -> Path:
    return data.raw_dir("mnist")
