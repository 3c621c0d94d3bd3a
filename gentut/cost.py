"""What training costs: each shipped model's real training step, timed on this machine.

`seconds_per_iteration(name)` builds the network of `name`'s recipe, feeds it real batches
of its data set at the recipe's batch size through the course's loop (`train.fit`, bf16
where the recipe asks for it and the device runs it in hardware), lets it warm up, then
times further iterations. Multiplied by the recipe's number of iterations it gives what the
whole run would cost on this one device, whatever device the shipped model trained on.
Run `python -m gentut.metrics --only cost` to time every network and record the result.
"""

from __future__ import annotations

import os
import time

import torch

from . import data, pretrained
from .hardware import device as pick_device
from .hardware import fast_bf16, machine
from .train import fit

WARMUP = 5   # untimed iterations first: allocations, oneDNN's kernel choices, Adam's state
STEPS = 30   # timed iterations: enough for a stable mean, cheap on a shared 2-core CPU


def group(name: str) -> str:
    """The first shipped name whose network and step are `name`'s (same family, same bf16):
    dcgan-fashion trains exactly as dcgan-mnist does, on other images, so one timing serves."""
    recipe = pretrained.recipe_of(name)
    return next(n for n, r in pretrained.RECIPES.items()
                if r.family is recipe.family and r.bf16 == recipe.bf16)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def seconds_per_iteration(name: str, steps: int = STEPS, warmup: int = WARMUP,
                          device: str | torch.device = "cpu",
                          root: str | None = None) -> dict:
    """Wall-clock seconds per training iteration of `name`'s recipe on `device`, after
    `warmup` iterations; with the process's share of the CPU while it ran (1: it had every
    thread's core to itself; less: other work took some)."""
    recipe = pretrained.recipe_of(name)
    dev = pick_device(device)
    torch.manual_seed(recipe.seed)
    model = recipe.family()
    batches = data.Batches(data.load(recipe.dataset, root=root), model.batch_size,
                           value_range=model.value_range, device=dev, seed=recipe.seed)
    bf16 = recipe.bf16 and fast_bf16(dev)

    def run(n: int) -> None:
        fit(model, batches, n, snapshots=(), seed=recipe.seed, bf16=bf16, progress=False)

    run(warmup)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    _sync(dev)
    wall, cpu = time.perf_counter(), time.process_time()
    run(steps)
    _sync(dev)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"model": name, "steps": steps, "seconds": wall, "seconds_per_iteration": wall / steps,
            "bf16": bf16, "batch_size": model.batch_size, "machine": machine(dev),
            "cpu_share": cpu / (wall * torch.get_num_threads()) if dev.type == "cpu" else None,
            "load_average": load}
