"""`pytest --nbval` passes on a machine whose device choice finds a GPU.

The chapters' committed outputs were recorded on the CPU ("device: cpu"). On a reader's GPU
machine `gentut.device()` would pick cuda or mps; the test command pins it with
GENTUT_DEVICE=cpu (tests/conftest.py). Here a `sitecustomize` makes torch report a CUDA GPU
and Apple's MPS in every process, the nbval kernel's included, and nbval runs a chapter.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
FAKE_GPU = """
import torch
import torchvision  # its import asks CUDA for real, before the fake
torch.cuda.is_available = lambda: True
torch.backends.mps.is_available = lambda: True
"""


@pytest.fixture
def gpu_env(tmp_path) -> dict[str, str]:
    (tmp_path / "sitecustomize.py").write_text(FAKE_GPU)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    return env


def test_the_fake_gpu_is_what_auto_would_pick(gpu_env):
    gpu_env.pop("GENTUT_DEVICE", None)
    out = subprocess.run([sys.executable, "-c", "import gentut; print(gentut.device())"],
                         env=gpu_env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "cuda"


@pytest.mark.parametrize("chapter", ["00_intro.ipynb"])
def test_nbval_passes_where_a_gpu_is_found(gpu_env, chapter):
    gpu_env["GENTUT_DEVICE"] = "cpu"  # what tests/conftest.py sets for the test command
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "--nbval", str(ROOT / "notebooks" / chapter)],
                         env=gpu_env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:]
