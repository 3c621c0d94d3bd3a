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
from .models.base import Generative, Trainable

SNAPSHOTS = (1, 100, 200, 400, 800)  # iterations of the seed's Figure 1


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
        return {"losses": self.losses, "snapshots": self.snapshots, "info": self.info}

    @classmethod
    def from_state_dict(cls, state: dict) -> History:
        return cls(dict(state["losses"]), dict(state["snapshots"]), dict(state["info"]))


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
    device = batches.device
    model.to(device).train()
    opt = model.optimizers()
    torch.manual_seed(seed)
    history = History()
    if resume and checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint)
        model.load_state_dict(state["model"])
        for name, o in opt.items():
            o.load_state_dict(state["optimizers"][name])
        batches.load_state_dict(state["batches"])
        history = History.from_state_dict(state["history"])
        torch.set_rng_state(state["rng"]["cpu"])
        if device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    done = history.steps
    history.info.update(device=str(device), batch_size=batches.batch_size, seed=seed,
                        steps_per_epoch=len(batches), bf16=bf16)

    def save() -> None:
        rng = {"cpu": torch.get_rng_state()}
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(device)
        save_atomic({
            "model": model.state_dict(),
            "optimizers": {name: o.state_dict() for name, o in opt.items()},
            "batches": batches.state_dict(),
            "history": history.state_dict(),
            "rng": rng,
        }, checkpoint)

    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if bf16
                else contextlib.nullcontext())
    pending: list[dict[str, torch.Tensor]] = []

    def flush(bar: tqdm) -> None:
        """Move the pending loss terms to the history in one device sync; stop on NaN/inf."""
        if not pending:
            return
        names = list(pending[0])
        rows = torch.stack([torch.stack([r[k].float() for k in names]) for r in pending]).tolist()
        first = history.steps + 1
        for i, row in enumerate(rows):
            for name, value in zip(names, row, strict=True):
                if not math.isfinite(value):
                    kept = (f"the last good checkpoint ({checkpoint}) is kept" if checkpoint
                            else "no checkpoint was written")
                    raise NonFiniteLossError(
                        f"step {first + i}: {name} is {value}; training stopped and {kept}. "
                        "Lower the learning rate, or turn bf16 off")
        for name, column in zip(names, zip(*rows, strict=True), strict=True):
            history.losses.setdefault(name, []).extend(column)
        pending.clear()
        bar.set_postfix({k: f"{v[-1]:.3g}" for k, v in history.losses.items()}, refresh=False)

    wall = float(history.info.get("wall_time_s", 0.0))
    start = time.perf_counter()
    bar = tqdm(total=steps, initial=done, disable=not progress,
               desc=f"{type(model).__name__} on {device}")
    try:
        for it in range(done + 1, steps + 1):
            x, y = batches.next()
            with autocast:
                pending.append(model.step(x, y, opt))
            if it in snapshots and isinstance(model, Generative):
                images = model.sample(snapshot_size, seed=snapshot_seed)
                history.snapshots[it] = (images * 255).round().to(torch.uint8).cpu()
            bar.update()
            if len(pending) >= log_every or it == steps or (checkpoint and it % every == 0):
                flush(bar)
            if checkpoint is not None and (it % every == 0 or it == steps):
                history.info["wall_time_s"] = wall + time.perf_counter() - start
                save()
    finally:
        bar.close()
    history.info["wall_time_s"] = wall + time.perf_counter() - start
    history.info["seconds_per_epoch"] = (history.info["wall_time_s"] / max(history.steps, 1)
                                         * len(batches))
    return history
