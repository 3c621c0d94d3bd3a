"""Colab's path: a plain install of gentut from a clean clone runs the chapters, fast.

A chapter's first cell in Colab runs `pip install git+<repository>`: no `-e`, no extras,
over the PyTorch that Colab has. This test builds the wheel from a clean clone of the
committed tree, installs it into a fresh environment that holds only torch, torchvision and
ipykernel (what Colab has), and executes every chapter with TRAIN = False from a folder
outside the repository. An audit hook in that environment records every file the kernel
opens inside the checkout: the shipped weights and metrics must come from the installed
package, not from the repo's gentut/, book/ or tests/, and the data from GENTUT_DATA. Each
chapter must finish within CHAPTER_SECONDS on the 2-core CPU.
"""

import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import papermill
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# seconds a chapter may take with TRAIN = False, kernel start included: 30; a minute for the
# diffusion chapter, whose figures run samplers of tens of network evaluations, and 45 s for
# the comparison, which draws 64 samples of each diffusion model (50 U-Net passes each)
CHAPTER_SECONDS = {"07_diffusion": 60, "08_comparison": 45}
DEFAULT_SECONDS = 30
TORCH = ["torch==2.14.1", "torchvision==0.29.1"]

AUDIT = """
import os, sys
_roots = tuple(r for r in os.environ.get("GENTUT_AUDIT_ROOTS", "").split(os.pathsep) if r)
_log = os.environ.get("GENTUT_AUDIT_LOG")
if _roots and _log:
    def _hook(event, args):
        if event == "open" and isinstance(args[0], str) and args[0].startswith(_roots):
            with open(_log, "a") as f:  # an open of the log itself is not under a root
                f.write(args[0] + "\\n")
    sys.addaudithook(_hook)
"""


def run(*cmd: str | Path, **kw) -> None:
    subprocess.run([str(c) for c in cmd], check=True, **kw)


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> dict:
    """A fresh environment with torch, torchvision, ipykernel and the built wheel only."""
    tmp = tmp_path_factory.mktemp("plain")
    run("git", "clone", "--quiet", ROOT, tmp / "clone")
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "-w", tmp / "dist", tmp / "clone")
    (wheel,) = (tmp / "dist").glob("gentut-*.whl")
    env_dir = tmp / "env"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", *TORCH, "ipykernel", wheel)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run([python, "-c", purelib],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "sitecustomize.py").write_text(AUDIT)
    kernels = tmp / "kernels"
    run(python, "-m", "ipykernel", "install", "--prefix", kernels, "--name", "plain")
    data = tmp / "data"  # the reader's own copy of the data sets, outside the checkout
    shutil.copytree(os.environ["GENTUT_DATA"], data)
    return {"python": python, "tmp": tmp, "jupyter_path": kernels / "share" / "jupyter",
            "data": data}


def test_the_wheel_ships_every_weights_record_and_diagram(plain):
    """Every file the repo keeps in gentut/weights and gentut/diagrams is in the wheel."""
    listing = ("import gentut, pathlib; root = pathlib.Path(gentut.__file__).parent;"
               "print(root); [print(p.relative_to(root).as_posix()) for d in"
               " ('weights', 'diagrams') for p in sorted((root / d).iterdir())]")
    out = subprocess.run([plain["python"], "-c", listing], capture_output=True, text=True,
                         check=True, cwd=plain["tmp"]).stdout.split()
    assert not out[0].startswith(str(ROOT)), out[0]
    tracked = subprocess.run(["git", "ls-files", "weights", "diagrams"], cwd=ROOT / "gentut",
                             capture_output=True, text=True, check=True).stdout.split()
    assert len(tracked) >= 15 and set(out[1:]) >= set(tracked)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_fast_from_a_plain_install(plain, chapter, monkeypatch):
    work = plain["tmp"] / "run" / chapter.stem
    work.mkdir(parents=True)
    log = plain["tmp"] / f"{chapter.stem}.opened"
    monkeypatch.setenv("JUPYTER_PATH", str(plain["jupyter_path"]))
    monkeypatch.setenv("GENTUT_DATA", str(plain["data"]))
    monkeypatch.setenv("GENTUT_AUDIT_ROOTS", str(ROOT))
    monkeypatch.setenv("GENTUT_AUDIT_LOG", str(log))
    monkeypatch.delenv("PYTHONPATH", raising=False)
    start = time.perf_counter()
    papermill.execute_notebook(str(chapter), str(work / chapter.name), cwd=str(work),
                               kernel_name="plain", progress_bar=False)
    seconds = time.perf_counter() - start
    opened = sorted(set(log.read_text().split())) if log.exists() else []
    assert opened == [], f"{chapter.name} read files in the checkout: {opened[:5]}"
    limit = CHAPTER_SECONDS.get(chapter.stem, DEFAULT_SECONDS)
    assert seconds < limit, f"{chapter.name} took {seconds:.0f} s (at most {limit} s)"
