"""What training and sampling cost: each shipped model's real training step, and its draw
of 64 samples, timed on this machine.

`seconds_per_iteration(name)` builds the network of `name`'s recipe, feeds it real batches
of its data set at the recipe's batch size through the course's loop (`train.fit`, bf16
where the recipe asks for it and the device runs it in hardware), lets it warm up, then
times further iterations. Multiplied by the recipe's number of iterations it gives what the
whole run would cost on this one device, whatever device the shipped model trained on.
`sampling_seconds(model)` times what a reader waits for: one draw of 64 samples with the
model's default sampler (a GAN's single pass, a diffusion model's 50 network evaluations).
Run `python -m gentut.metrics --only cost` to time every model and record the results.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import torch

from . import data, pretrained
from .hardware import device as pick_device
from .hardware import fast_bf16, machine
from .models import Generative
from .train import fit

WARMUP = 5   # untimed iterations first: allocations, oneDNN's kernel choices, Adam's state
STEPS = 30   # timed iterations: enough for a stable mean, cheap on a shared 2-core CPU


def group(name: str) -> str:
    """The first shipped name whose network and step are `name`'s (same family, same bf16):
    dcgan-fashion trains exactly as dcgan-mnist does, on other images, so one timing serves."""
    recipe = pretrained.recipe_of(name)
    return next(n for n, r in (pretrained.RECIPES | pretrained.GUIDES).items()
                if r.family is recipe.family and r.bf16 == recipe.bf16)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def seconds(fn: Callable[[], object], device: torch.device, at_least: float = 2.0,
            repeats: int = 5) -> float:
    """The median wall time of fn() over `repeats` calls, or fewer once `at_least` seconds
    have passed (a slow call runs once). Call it warm: the first call on a new shape pays
    for allocations and oneDNN's kernel choices."""
    times: list[float] = []
    while len(times) < repeats and sum(times) < at_least:
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sampling_seconds(model: Generative, n: int = 64, **options) -> float:
    """Seconds `model` takes to draw n samples (`options`, such as a diffusion model's
    sampler and steps, go to its `sample`), after one draw of n with its defaults: the
    shapes' first call pays for allocations and kernel choices."""
    model.sample(n, seed=0)
    return seconds(lambda: model.sample(n, seed=0, **options), model.device)


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
