"""The one training loop every model shares, with its history and atomic checkpoints.

A model family brings only its `step` (the algorithm its chapter teaches); `fit` brings the
rest: batches, a progress bar, the recorded history, image snapshots from a fixed noise
batch, checkpoints written atomically, exact resumption, and a stop on a non-finite loss.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .data import Batches
from .hardware import machine
from .models.base import Generative, Trainable

SNAPSHOTS = (1, 100, 200, 400, 800)  # the iterations of Chang's Figure 1


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; training stopped before saving the bad weights."""


@dataclass
class History:
    """What a run recorded: every loss term per iteration, snapshots, and run facts."""

    losses: dict[str, list[float]] = field(default_factory=dict)
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)  # step -> uint8 images
    info: dict[str, float | int | str] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """Iterations recorded so far."""
        return len(next(iter(self.losses.values()), []))

    def state_dict(self) -> dict:
        """The one on-disk form, in checkpoints and shipped files alike: a float32 tensor per
        loss term (a quarter of a pickled list of floats), uint8 snapshots, plain info."""
        return {"losses": {k: torch.tensor(v, dtype=torch.float32) for k, v in self.losses.items()},
                "snapshots": self.snapshots, "info": self.info}

    @classmethod
    def from_state_dict(cls, state: dict) -> History:
        losses = {k: torch.as_tensor(v).tolist() for k, v in state["losses"].items()}
        return cls(losses, dict(state["snapshots"]), dict(state["info"]))


def save_atomic(obj: dict, path: str | os.PathLike) -> None:
    """torch.save to a temporary file beside `path`, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would make shipped files private
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint onto the CPU without running pickled code; a damaged file gets a
    clear error. The CPU, whatever the training device: RNG states must stay CPU byte
    tensors, and `load_state_dict` moves weights and optimizer state to the model's device."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:
        raise RuntimeError(f"checkpoint {path} is unreadable ({type(err).__name__}): "
                           "delete it to train from scratch") from None


def fit(model: Trainable, batches: Batches, steps: int, *,
        checkpoint: str | os.PathLike | None = None, every: int = 1000, resume: bool = False,
        snapshots: tuple[int, ...] = SNAPSHOTS, snapshot_size: int = 64, snapshot_seed: int = 0,
        seed: int = 0, bf16: bool = False, log_every: int = 50,
        progress: bool = True) -> History:
    """Train `model` for `steps` iterations in total (counting those of a resumed run).

    `checkpoint` is written every `every` steps and at the end; with `resume=True` a run
    continues from it exactly where it stopped. `bf16` runs each step under bfloat16 autocast.
    """
    model.to(batches.device).train()
    model.check_input(batches.images[:1])
    opt = model.optimizers()
    torch.manual_seed(seed)
    history = restore(checkpoint, model, opt, batches) if resume else History()
    history.info.update(device=str(batches.device), machine=machine(batches.device),
                        batch_size=batches.batch_size, seed=seed,
                        steps_per_epoch=len(batches), bf16=bf16)
    log = LossLog(history, checkpoint)
    clock = Clock(history)
    autocast = (torch.autocast(batches.device.type, dtype=torch.bfloat16) if bf16
                else contextlib.nullcontext())
    with tqdm(total=steps, initial=history.steps, disable=not progress,
              desc=f"{type(model).__name__} on {batches.device}") as bar:
        for it in range(history.steps + 1, steps + 1):
            x, y = batches.next()                      # the next batch
            with autocast:
                log.append(model.step(x, y, opt))      # the family's step: its chapter's algorithm
            if it in snapshots and isinstance(model, Generative):
                history.snapshots[it] = snapshot(model, snapshot_size, snapshot_seed)
            bar.update()
            save_now = checkpoint is not None and (it % every == 0 or it == steps)
            if save_now or len(log) >= log_every or it == steps:
                log.flush(bar)                         # stops on a NaN before anything is saved
            if save_now:
                clock.record()
                save_checkpoint(checkpoint, model, opt, batches, history)
    clock.record()
    return history


def snapshot(model: Generative, n: int, seed: int) -> torch.Tensor:
    """The fixed noise batch decoded now, as uint8 images on the CPU."""
    return (model.sample(n, seed=seed) * 255).round().to(torch.uint8).cpu()


def save_checkpoint(path: str | os.PathLike, model: Trainable,
                    opt: dict[str, torch.optim.Optimizer], batches: Batches,
                    history: History) -> None:
    """Everything a resumed run needs to continue exactly: weights, optimizers, where the
    batches are, the history so far and the random number generators."""
    device = batches.device
    rng = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    save_atomic({
        "model": model.state_dict(),
        "optimizers": {name: o.state_dict() for name, o in opt.items()},
        "batches": batches.state_dict(),
        "history": history.state_dict(),
        "rng": rng,
    }, path)


def restore(path: str | os.PathLike | None, model: Trainable,
            opt: dict[str, torch.optim.Optimizer], batches: Batches) -> History:
    """Load the checkpoint at `path` into the model, optimizers, batches and RNGs, and return
    its history; a fresh History where there is none yet."""
    if path is None or not Path(path).exists():
        return History()
    state = load_checkpoint(path)
    model.load_state_dict(state["model"])
    for name, o in opt.items():
        o.load_state_dict(state["optimizers"][name])
    batches.load_state_dict(state["batches"])
    torch.set_rng_state(state["rng"]["cpu"])
    device = batches.device
    if device.type == "cuda" and "cuda" in state["rng"]:
        torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    return History.from_state_dict(state["history"])


class LossLog:
    """The loss terms of the steps since the last flush, kept on the device: moving them to
    the history in one sync every few dozen steps, not one `.item()` per step, keeps a GPU
    busy. A flush checks them, and stops training on a NaN or an infinity."""

    def __init__(self, history: History, checkpoint: str | os.PathLike | None) -> None:
        self.history, self.checkpoint = history, checkpoint
        self.pending: list[dict[str, torch.Tensor]] = []

    def __len__(self) -> int:
        return len(self.pending)

    def append(self, terms: dict[str, torch.Tensor]) -> None:
        self.pending.append(terms)

    def flush(self, bar: tqdm) -> None:
        """Move the pending terms to the history in one device sync; stop on NaN/inf."""
        if not self.pending:
            return
        names = list(self.pending[0])
        rows = torch.stack([torch.stack([r[k].float() for k in names])
                            for r in self.pending]).tolist()
        first = self.history.steps + 1
        for i, row in enumerate(rows):
            for name, value in zip(names, row, strict=True):
                if not math.isfinite(value):
                    raise NonFiniteLossError(f"step {first + i}: {name} is {value}; training "
                                             f"stopped and {self.kept()}. Lower the learning "
                                             "rate, or turn bf16 off")
        for name, column in zip(names, zip(*rows, strict=True), strict=True):
            self.history.losses.setdefault(name, []).extend(column)
        self.pending.clear()
        bar.set_postfix({k: f"{v[-1]:.3g}" for k, v in self.history.losses.items()},
                        refresh=False)

    def kept(self) -> str:
        """What survives the stop: the last checkpoint, if one was written."""
        if self.checkpoint is not None and Path(self.checkpoint).exists():
            return f"the last good checkpoint ({self.checkpoint}) is kept"
        if self.checkpoint is not None:
            return f"no checkpoint had been written yet to {self.checkpoint}"
        return "no checkpoint was asked for"


class Clock:
    """Wall time across resumed runs, kept in the history's info."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.before = float(history.info.get("wall_time_s", 0.0))
        self.start = time.perf_counter()

    def record(self) -> None:
        info = self.history.info
        info["wall_time_s"] = self.before + time.perf_counter() - self.start
        info["seconds_per_epoch"] = (info["wall_time_s"] / max(self.history.steps, 1)
                                     * int(info["steps_per_epoch"]))
