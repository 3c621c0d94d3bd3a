"""What a diffusion model's sampler buys and costs: the study the diffusion chapter reads.

For each shipped DDPM and flow-matching model, on one machine:
- "sampling": for each sampler and number of steps, the FID of n unconditional samples of
  the network alone (no guide) against the test set and the seconds 64 of them take;
- "autoguidance": for each omega, the FID, precision and recall of n unconditional samples
  guided by the model's guide with the default sampler (omega = 1: the network alone);
- "guidance": for each guidance scale omega, n samples spread evenly over the classes, their
  FID, precision and recall against the test set, and the agreement: the share the
  evaluation classifier reads as the class asked for;
- "cost": one U-Net evaluation of 64 images, and one of its guide (`metrics.json` holds
  every model's time to draw 64 samples, the GANs' single pass included, timed the same way
  by `gentut.cost`);
- "attention", run only when asked for: whether the U-Net's self-attention at 7x7 pays, a
  short run of the model's recipe with it and one without, and the FID of n samples of each.
FIDs here come from n samples, 1,000 by default against the comparison's 10,000: the DDPM's
curve alone is 1.4 million network evaluations for 1,000 samples a point, about 50 minutes
on a 2-core CPU. FID is biased upwards at small n, so they compare with each other and with the
"floor" recorded beside them, n real training images scored the same way, not with
`metrics.json`.
`python -m gentut.diffusion_study NAME...` measures the first four groups (the ablation with
`--only attention`) and updates `gentut/weights/diffusion_study.json`, replacing the rows it
measures and keeping the others.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import time

import torch

from . import metrics, pretrained
from .cost import seconds
from .hardware import machine
from .models import Guided
from .models.unet import NULL_CLASS, UNet

RECORD = pretrained.WEIGHTS / "diffusion_study.json"
# (sampler, steps) per family: DDIM in 10 to 250 steps, the ancestral sampler in 50 to 250 and
# over the full chain of 1,000; Euler, Heun and ancestral steps at 10 to 100 network
# evaluations (Heun takes two a step)
SAMPLERS = {"DDPM": [("ddim", k) for k in (10, 20, 50, 100, 250)]
            + [("ancestral", k) for k in (50, 100, 250, 1000)],
            "FlowMatching": [("euler", k) for k in (10, 20, 50, 100)]
            + [("heun", k) for k in (5, 10, 25, 50)]
            + [("ancestral", k) for k in (10, 25, 50, 100)]}
OMEGAS = (0.0, 1.0, 2.0, 3.0, 5.0)  # Ho & Salimans' w = omega - 1 from -1 (none) to 4
AUTO_OMEGAS = (1.0, 1.75, 2.5)  # the network alone, the default, and past it
TIMED = 64  # images per timed draw: one figure's worth
ABLATION_ITERATIONS = 3_000  # a sixth of the recipe's 18,720: about 20 min a variant, 2-core CPU
# what identifies a row of each group: a new row replaces the recorded one with the same key
KEYS = {"sampling": ("model", "sampler", "steps"), "guidance": ("model", "guidance"),
        "autoguidance": ("model", "guidance"),
        "cost": ("model", "pass"), "attention": ("model", "attention", "iterations")}
GROUPS = {"sampling": "FID and seconds per 64 images for each sampler and number of steps",
          "guidance": "FID, precision, recall and agreement for each guidance scale",
          "autoguidance": "FID, precision and recall of unconditional samples for each omega",
          "cost": "one evaluation of the U-Net, and of its guide, on 64 images",
          "attention": "a short run with and without the 7x7 self-attention, and its FID"}
DEFAULT_GROUPS = ("sampling", "guidance", "autoguidance", "cost")  # the ablation trains


def sampling(model: Guided, name: str, f_real: torch.Tensor, clf, n: int,
             configs: list[tuple[str, int]] | None = None, seed: int = 0) -> list[dict]:
    """One row per (sampler, steps) of `configs` (default: the family's in SAMPLERS): FID of
    n unconditional samples of the network alone (omega = 1: no guide) against the real
    features `f_real`, seconds per TIMED images."""
    configs = SAMPLERS[type(model).__name__] if configs is None else configs
    rows = []
    for sampler, steps in configs:
        fake = metrics.draw(model, n, seed, sampler=sampler, steps=steps, guidance=1.0)
        rows.append({
            "model": name, "sampler": sampler, "steps": steps,
            "evaluations": model.evaluations(sampler, steps, 1.0), "samples": n,
            "fid": metrics.fid_from_features(metrics.features(fake, clf), f_real),
            # warm: the n samples just drawn ran the same shapes (the U-Net takes slices)
            "seconds_per_64": seconds(functools.partial(
                model.sample, TIMED, seed=seed, sampler=sampler, steps=steps, guidance=1.0),
                model.device)})
    return rows


def autoguidance(model: Guided, name: str, f_real: torch.Tensor, clf, n: int,
                 omegas: tuple[float, ...] = AUTO_OMEGAS, seed: int = 0) -> list[dict]:
    """One row per omega: n unconditional samples with the default sampler, guided by the
    model's guide, and their FID, precision and recall against `f_real`."""
    rows = []
    for omega in omegas:
        f_fake = metrics.features(metrics.draw(model, n, seed, guidance=omega), clf)
        precision, recall = metrics.precision_recall_from_features(f_fake, f_real)
        rows.append({"model": name, "guidance": omega, "sampler": model.sampler,
                     "steps": model.steps, "evaluations": model.evaluations(guidance=omega),
                     "samples": n, "fid": metrics.fid_from_features(f_fake, f_real),
                     "precision": precision, "recall": recall})
    return rows


def guidance(model: Guided, name: str, f_real: torch.Tensor, clf, n: int,
             omegas: tuple[float, ...] = OMEGAS, seed: int = 0) -> list[dict]:
    """One row per omega: n samples with the default sampler, class k % 10 for the k-th, and
    their FID, precision and recall against `f_real`, and the agreement with the classes."""
    labels = torch.arange(n) % NULL_CLASS
    rows = []
    for omega in omegas:
        fake = metrics.draw(model, n, seed, y=labels, guidance=omega)
        f_fake = metrics.features(fake, clf)
        precision, recall = metrics.precision_recall_from_features(f_fake, f_real)
        agreement = (clf.predict(fake).argmax(1) == labels).double().mean().item()
        rows.append({"model": name, "guidance": omega, "sampler": model.sampler,
                     "steps": model.steps,
                     "evaluations": model.evaluations(guidance=omega, conditional=True),
                     "samples": n, "fid": metrics.fid_from_features(f_fake, f_real),
                     "precision": precision, "recall": recall, "agreement": agreement})
    return rows


@torch.no_grad()
def cost(model: Guided, name: str) -> list[dict]:
    """Seconds for one evaluation of `model`'s U-Net on TIMED images, and of its guide's where
    it has one, each warmed up first."""
    x = torch.randn(TIMED, *model.image_shape, device=model.device)
    t = torch.full((TIMED,), 0.5, device=model.device)
    null = torch.full((TIMED,), NULL_CLASS, device=model.device)
    nets = {"one U-Net evaluation": model.ema, "one guide evaluation": model.guide}
    rows = []
    for what, net in nets.items():
        if net is not None:
            net(x, t, null)
            rows.append({"model": name, "pass": what,
                         "seconds_per_64": seconds(lambda net=net: net(x, t, null),
                                                   model.device)})
    return rows


def attention(name: str, f_real: torch.Tensor, clf, n: int,
              iterations: int = ABLATION_ITERATIONS, device: str = "cpu") -> list[dict]:
    """Does the U-Net's self-attention at 7x7 pay? One row per variant, with it and without:
    `name`'s recipe trained `iterations` iterations from its seed on the same batches, its
    network's parameters, seconds per training iteration, and the FID of n unconditional
    samples (default sampler) against `f_real` and seconds per TIMED of them."""
    recipe = pretrained.recipe_of(name)
    rows = []
    for with_attention in (True, False):
        family = functools.partial(lambda a: recipe.family(net=UNet(attention=a)),
                                   with_attention)  # built after run_recipe seeds torch
        start = time.perf_counter()
        model, _ = pretrained.run_recipe(dataclasses.replace(recipe, family=family), device,
                                         smoke_steps=iterations, progress=False)
        train_seconds = time.perf_counter() - start
        model.eval()
        fake = metrics.draw(model, n, 0)
        rows.append({
            "model": name, "attention": with_attention, "iterations": iterations,
            "parameters": sum(p.numel() for p in model.net.parameters()),
            "seconds_per_iteration": train_seconds / iterations, "samples": n,
            "sampler": model.sampler, "steps": model.steps,
            "fid": metrics.fid_from_features(metrics.features(fake, clf), f_real),
            "seconds_per_64": seconds(functools.partial(model.sample, TIMED, seed=0),
                                      model.device)})
    return rows


def study(names: list[str], n: int = 1_000, only: set[str] | None = None,
          device: str = "cpu", record: dict | None = None,
          configs: list[tuple[str, int]] | None = None,
          iterations: int = ABLATION_ITERATIONS) -> dict:
    """Measure the groups `only` (default: DEFAULT_GROUPS) of the shipped models `names` on
    `device`, the sampling group at `configs` (default: the family's in SAMPLERS), the
    ablation at `iterations`, replacing the rows of `record` (the recorded study, say) that
    they measure again and keeping the others."""
    only = set(DEFAULT_GROUPS) if only is None else only
    record = {group: [] for group in (*GROUPS, "floor")} if record is None else record
    for name in names:
        model = pretrained.load(name, device)
        if not isinstance(model, Guided):
            raise ValueError(f"{name} is not a diffusion or flow-matching model")
        dataset = pretrained.recipe_of(name).dataset
        clf = metrics.classifier(dataset).to(model.device)
        f_real = metrics.features(metrics.real_images(dataset).to(model.device), clf)
        if only & {"sampling", "guidance", "autoguidance", "attention"}:
            floor = metrics.features(metrics.real_train_pick(dataset, n).to(model.device), clf)
            record["floor"] = [r for r in record.get("floor", [])
                               if (r["dataset"], r["samples"]) != (dataset, n)] + [
                {"dataset": dataset, "samples": n,
                 "fid": metrics.fid_from_features(floor, f_real)}]
        for group in sorted(only):
            start = time.time()
            rows = (sampling(model, name, f_real, clf, n, configs) if group == "sampling" else
                    guidance(model, name, f_real, clf, n) if group == "guidance" else
                    autoguidance(model, name, f_real, clf, n) if group == "autoguidance" else
                    attention(name, f_real, clf, n, iterations, device)
                    if group == "attention" else cost(model, name))
            where = {"dataset": dataset, "machine": machine(model.device),
                     "load_average": os.getloadavg()[0]}
            new = {tuple(r[k] for k in KEYS[group]) for r in rows}
            record[group] = ([r for r in record.get(group, [])
                              if tuple(r[k] for k in KEYS[group]) not in new]
                             + [{**r, **where} for r in rows])
            print(f"{name} {group}: {time.time() - start:.0f} s", flush=True)
            for r in rows:
                print(json.dumps(r), flush=True)
    return record


def recorded() -> dict:
    """The study as `python -m gentut.diffusion_study` recorded it."""
    return json.loads(RECORD.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gentut.diffusion_study",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="shipped diffusion or flow-matching models")
    parser.add_argument("--only", default=",".join(DEFAULT_GROUPS), metavar="GROUP[,GROUP...]",
                        help=f"what to measure, of {', '.join(GROUPS)} "
                             f"(default: {', '.join(DEFAULT_GROUPS)})")
    parser.add_argument("-n", type=int, default=1_000, help="samples per point")
    parser.add_argument("--device", default="cpu", help="where to sample (default: cpu)")
    parser.add_argument("--configs", default=None, metavar="SAMPLER:STEPS[,...]",
                        help="the sampling group's points (default: the family's SAMPLERS)")
    parser.add_argument("--iterations", type=int, default=ABLATION_ITERATIONS,
                        help="training iterations of each variant in the attention group")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    if only - set(GROUPS):
        parser.error(f"unknown groups {sorted(only - set(GROUPS))}: choose from {list(GROUPS)}")
    record = recorded() if RECORD.exists() else None
    configs = None if args.configs is None else [
        (sampler, int(steps)) for sampler, steps in
        (config.split(":") for config in args.configs.split(","))]
    record = study(args.names, args.n, only, args.device, record, configs, args.iterations)
    RECORD.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
