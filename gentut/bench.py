"""Training speed of gentut's loop against the loop most tutorials write, in one run.

The reference reads MNIST through torchvision's dataset with ToTensor + Normalize
transforms and a shuffling DataLoader, computes D(real) and D(fake) in separate passes with
sigmoid + BCELoss, steps a plain Adam and logs losses with .item() every step. Both sides
train the same networks from the same initial weights at the same batch size (the
reference in PyTorch's default memory layout); rounds alternate so that drifts of the
machine hit both alike. Run: python -m gentut.bench
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import data, models
from .hardware import device as pick_device
from .hardware import machine
from .train import fit

BATCH = 100  # the reference's batch size, used by both sides
STEPS = {"cpu": {"gan": 300, "vae": 300, "dcgan": 50, "infogan": 10},
         "gpu": {"gan": 2000, "vae": 2000, "dcgan": 1000, "infogan": 300}}
FAMILIES = {"gan": models.GAN, "vae": models.VAE, "dcgan": models.DCGAN, "infogan": models.InfoGAN}


def torchvision_mnist(folder: Path, normalize: bool, root: str | None = None):
    """MNIST read by torchvision's dataset class from decompressed files put in `folder`."""
    from torchvision import datasets, transforms

    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    src = data.raw_dir("mnist", root)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        gz = src / f"{stem}.gz"
        with (gzip.open(gz) if gz.exists() else open(src / stem, "rb")) as f, \
                open(raw / stem, "wb") as out:
            shutil.copyfileobj(f, out)
    # torchvision checks that the test files exist too; empty stand-ins suffice here
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / stem).touch()
    steps = [transforms.ToTensor()]
    if normalize:  # to [-1, 1] for a tanh generator
        steps.append(transforms.Normalize((0.5,), (0.5,)))
    return datasets.MNIST(str(folder), train=True, transform=transforms.Compose(steps))


def take(loader, steps: int):
    """`steps` batches from a DataLoader, starting new (reshuffled) epochs as needed."""
    n = 0
    while True:
        for batch in loader:
            if n == steps:
                return
            yield batch
            n += 1


def reference_gan(model: models.GAN, loader, steps: int, device: torch.device) -> None:
    """The GAN loop as tutorials write it (pytorch/examples dcgan style)."""
    G, D = model.G, model.D
    criterion = nn.BCELoss()
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=model.betas)
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=model.betas)
    losses = []
    for real, _ in take(loader, steps):
        real = real.to(device)
        b = real.size(0)
        real_label = torch.ones(b, device=device)
        fake_label = torch.zeros(b, device=device)
        D.zero_grad()
        loss_real = criterion(torch.sigmoid(D(real)), real_label)
        fake = G(torch.randn(b, model.z_dim, device=device))
        loss_fake = criterion(torch.sigmoid(D(fake.detach())), fake_label)
        loss_D = loss_real + loss_fake
        loss_D.backward()
        opt_D.step()
        G.zero_grad()
        loss_G = criterion(torch.sigmoid(D(fake)), real_label)
        loss_G.backward()
        opt_G.step()
        losses.append((loss_D.item(), loss_G.item()))


def reference_vae(model: models.VAE, loader, steps: int, device: torch.device) -> None:
    """The VAE loop as tutorials write it (pytorch/examples vae style)."""
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    losses = []
    for x, _ in take(loader, steps):
        x = x.to(device)
        opt.zero_grad()
        mu, logvar = model.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = torch.sigmoid(model.decoder(z))
        bce = F.binary_cross_entropy(recon.view(-1, 784), x.view(-1, 784), reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        loss = (bce + kld) / len(x)
        loss.backward()
        opt.step()
        losses.append(loss.item())


def reference_infogan(model: models.InfoGAN, loader, steps: int, device: torch.device) -> None:
    """InfoGAN's loop as Natsu6767/InfoGAN-PyTorch writes it."""
    from .models import infogan as ig

    opt_D = torch.optim.Adam([*model.body.parameters(), *model.D_head.parameters()],
                             lr=ig.LR_D, betas=ig.BETAS)
    opt_G = torch.optim.Adam([*model.G.parameters(), *model.Q.parameters()],
                             lr=ig.LR_G, betas=ig.BETAS)
    criterion = nn.BCELoss()
    losses = []
    for real, _ in take(loader, steps):
        real = real.to(device)
        b = real.size(0)
        opt_D.zero_grad()
        loss_real = criterion(torch.sigmoid(model.D(real)), torch.ones(b, device=device))
        c = torch.randint(ig.CATEGORIES, (b,), device=device)
        cont = torch.rand(b, ig.CONTINUOUS, device=device) * 2 - 1
        z = torch.cat([torch.randn(b, ig.NOISE, device=device),
                       F.one_hot(c, ig.CATEGORIES).float(), cont], 1)
        fake = model.G(z)
        loss_fake = criterion(torch.sigmoid(model.D(fake.detach())), torch.zeros(b, device=device))
        (loss_real + loss_fake).backward()
        opt_D.step()
        opt_G.zero_grad()
        h = model.body(fake)
        loss_G = criterion(torch.sigmoid(model.D_head(h)), torch.ones(b, device=device))
        logits, mu, logvar = model.Q(h)
        info = F.cross_entropy(logits, c) + ig.LAMBDA_CONT * ig.gaussian_nll(cont, mu, logvar)
        (loss_G + info).backward()
        opt_G.step()
        losses.append(((loss_real + loss_fake).item(), loss_G.item()))


REFERENCES: dict[str, Callable] = {"gan": reference_gan, "vae": reference_vae,
                                   "dcgan": reference_gan, "infogan": reference_infogan}


def _timed(fn: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def compare(name: str, device: torch.device, rounds: int = 3, steps: int | None = None,
            root: str | None = None) -> dict[str, float]:
    """Median steps per second of gentut and of the reference for one family, and their ratio."""
    from torch.utils.data import DataLoader

    steps = steps or STEPS["cpu" if device.type == "cpu" else "gpu"][name]
    torch.manual_seed(0)
    ours_model = FAMILIES[name]().to(device)
    # same weights, in the default memory layout a tutorial's model has
    ref_model = copy.deepcopy(ours_model).to(memory_format=torch.contiguous_format)
    batches = data.Batches(data.load("mnist", root=root), BATCH,
                           value_range=ours_model.value_range, device=device)
    with tempfile.TemporaryDirectory(prefix="gentut-bench-") as tmp:
        dataset = torchvision_mnist(Path(tmp), ours_model.value_range[0] < 0, root)
        loader = DataLoader(dataset, batch_size=BATCH, shuffle=True)

        def ours(n: int = steps) -> None:
            fit(ours_model, batches, n, progress=False, snapshots=())

        def ref(n: int = steps) -> None:
            REFERENCES[name](ref_model, loader, n, device)

        ours(3), ref(3)  # warm up both
        t_ours, t_ref = [], []
        for _ in range(rounds):
            t_ours.append(_timed(ours, device))
            t_ref.append(_timed(ref, device))
    ours_sps, ref_sps = steps / statistics.median(t_ours), steps / statistics.median(t_ref)
    return {"model": name, "steps": steps, "gentut_steps_per_s": ours_sps,
            "reference_steps_per_s": ref_sps, "speedup": ours_sps / ref_sps}


def epoch_seconds(device: torch.device, root: str | None = None) -> float:
    """Wall time of one full MNIST epoch of the MLP GAN (600 steps of 100) through `fit`."""
    torch.manual_seed(0)
    model = models.GAN()
    batches = data.Batches(data.load("mnist", root=root), BATCH,
                           value_range=model.value_range, device=device)
    return _timed(lambda: fit(model, batches, len(batches), progress=False, snapshots=()),
                  device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["gan", "dcgan", "vae"],
                        choices=sorted(FAMILIES))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="steps per timed run")
    parser.add_argument("--data", default=None, help="data root (default: GENTUT_DATA, cache)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    dev = pick_device(args.device)
    print(f"device: {dev} ({machine(dev)}), torch {torch.__version__}, batch {BATCH}, "
          f"median of {args.rounds} alternating rounds")
    print("| model | steps/s gentut | steps/s reference | speedup |")
    print("|---|---:|---:|---:|")
    rows = []
    for name in args.models:
        r = compare(name, dev, args.rounds, args.steps, args.data)
        rows.append(r)
        print(f"| {name} | {r['gentut_steps_per_s']:.1f} | {r['reference_steps_per_s']:.1f} "
              f"| {r['speedup']:.2f}x |", flush=True)
    epoch = epoch_seconds(dev, args.data)
    print(f"one MNIST epoch of the MLP GAN (600 steps): {epoch:.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"device": str(dev), "machine": machine(dev), "torch": torch.__version__,
             "rows": rows, "gan_epoch_s": epoch}, indent=2))


if __name__ == "__main__":
    main()
