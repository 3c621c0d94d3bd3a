"""How good are the samples, and how likely are the data: the comparison's measurements.

Sample quality is measured with the course's evaluation classifier for each data set
(`classifier-mnist`, `classifier-fashion`): FID in its 128-dimensional feature space (with
torchmetrics' implementation), precision and recall there, the classifier-based Inception
Score, and class coverage.
InfoGAN's categorical code is scored as a classifier both ways, after matching codes to
labels one-to-one. The VAE, the one model with a likelihood, gets its test-set ELBO and an
importance-weighted estimate of log p(x), in nats.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from scipy.optimize import linear_sum_assignment
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from . import data, pretrained
from .models import VAE, Classifier, Generative, InfoGAN, RealNVP
from .models.vae import bce


def classifier(dataset: str) -> Classifier:
    """The shipped evaluation classifier of `dataset` ("mnist" or "fashion")."""
    return pretrained.load(f"classifier-{dataset}")


class Features(nn.Module):
    """The classifier's penultimate layer, as torchmetrics' FID expects a feature extractor."""

    def __init__(self, clf: Classifier) -> None:
        super().__init__()
        self.clf = clf.eval()
        self.num_features = clf.num_features

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.clf.features(x.float()).double()


def fid(fake: torch.Tensor, real: torch.Tensor, clf: Classifier, batch: int = 1000) -> float:
    """Fréchet distance between the feature Gaussians of two image sets in [0, 1]."""
    metric = FrechetInceptionDistance(feature=Features(clf), normalize=True,
                                      input_img_size=(1, 28, 28))
    for images, is_real in ((real, True), (fake, False)):
        for b in images.split(batch):
            metric.update(b, real=is_real)
    return metric.compute().item()


def precision_recall(fake: torch.Tensor, real: torch.Tensor, clf: Classifier,
                     k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019) in the classifier's feature
    space. Each set's support is the union of balls reaching each point's k-th nearest
    neighbour in it; precision is the share of samples inside the real images' support
    (quality), recall the share of real images inside the samples' (diversity)."""
    features = Features(clf)
    f_fake, f_real = features(fake), features(real)

    def inside(points: torch.Tensor, support: torch.Tensor) -> float:
        radii = torch.cdist(support, support).kthvalue(k + 1, dim=1).values  # +1: itself
        return (torch.cdist(points, support) <= radii).any(1).double().mean().item()

    return inside(f_fake, f_real), inside(f_real, f_fake)


def inception_score(probs: torch.Tensor) -> float:
    """exp E_x KL(p(y|x) || p(y)): up to 10 for confident predictions spread over 10 classes."""
    p_y = probs.mean(0, keepdim=True)
    kl = (probs * (torch.log(probs + 1e-12) - torch.log(p_y + 1e-12))).sum(1)
    return math.exp(kl.mean().item())


def coverage(probs: torch.Tensor) -> torch.Tensor:
    """Each class's share of the samples, by the classifier's most probable label."""
    return torch.bincount(probs.argmax(1), minlength=probs.shape[1]).float() / len(probs)


def matching(confusion: torch.Tensor) -> torch.Tensor:
    """The label each code stands for, under the best one-to-one map (Hungarian)."""
    rows, cols = linear_sum_assignment(confusion.numpy(), maximize=True)
    return torch.as_tensor(cols)[torch.as_tensor(rows).argsort()]


def matched_accuracy(codes: torch.Tensor, labels: torch.Tensor,
                     k: int = 10) -> tuple[float, torch.Tensor]:
    """Accuracy of codes as labels under the best one-to-one code->label map, and the
    (code, label) count matrix it was read from."""
    confusion = torch.zeros(k, k, dtype=torch.long)
    confusion.index_put_((codes.cpu(), labels.cpu()), torch.ones(len(codes), dtype=torch.long),
                         accumulate=True)
    label = matching(confusion)
    return confusion[torch.arange(k), label].sum().item() / len(codes), confusion


@torch.no_grad()
def infogan_code_accuracy(model: InfoGAN, clf: Classifier, test: data.Dataset,
                          n: int = 10_000, seed: int = 0) -> dict[str, float]:
    """The categorical code as a classifier: Q reading real test images, and G writing digits."""
    model.eval()
    x = test.images.float() / 255
    codes = torch.cat([model.Q(model.body(b.to(model.device)))[0].argmax(1).cpu()
                       for b in x.split(1000)])
    q_acc, q_confusion = matched_accuracy(codes, test.labels)
    c = torch.arange(n) % 10
    samples = model.sample(n, seed=seed, c=c)
    g_acc, g_confusion = matched_accuracy(c, clf.predict(samples).argmax(1))
    return {"q_accuracy": q_acc, "g_accuracy": g_acc,
            "q_confusion": q_confusion, "g_confusion": g_confusion}


@torch.no_grad()
def elbo(vae: VAE, x: torch.Tensor, batch: int = 1000) -> float:
    """The mean ELBO of images x in [0, 1], in nats, with one sample of z per image."""
    total = 0.0
    for b in x.split(batch):
        mu, logvar = vae.encode(b)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        total += -(bce(vae.decoder(z), b) + 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)
                   .sum(1)).sum().item()
    return total / len(x)


@torch.no_grad()
def iw_log_likelihood(vae: VAE, x: torch.Tensor, k: int = 500, batch: int = 100) -> float:
    """log p(x) estimated with k importance samples from q(z|x), mean over images, in nats.

    log p(x) >= E log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x); the bound
    tightens as k grows (Burda et al., 2015).
    """
    total = 0.0
    for b in x.split(batch):
        mu, logvar = vae.encode(b)
        std = torch.exp(0.5 * logvar)
        z = mu + std * torch.randn(k, *mu.shape)                     # (k, B, d)
        log_q = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)
        log_prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        logits = vae.decoder(z.flatten(0, 1))                        # (k B, 1, 28, 28)
        log_lik = -bce(logits, b.repeat(k, 1, 1, 1)).view(k, len(b))
        total += (torch.logsumexp(log_lik + log_prior - log_q, 0) - math.log(k)).sum().item()
    return total / len(x)


def bits_per_dim(nats: float, dims: int = 28 * 28) -> float:
    """A log-likelihood per image in nats as bits per pixel: -log p(x) / (D ln 2)."""
    return -nats / (dims * math.log(2))


@torch.no_grad()
def flow_bits_per_dim(flow: RealNVP, x: torch.Tensor, batch: int = 500, seed: int = 0) -> float:
    """The flow's exact test bits per dimension on 8-bit images x in [0, 1], one uniform
    dequantization per image (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    flow.eval()
    return torch.cat([flow.bits_per_dim(b.to(flow.device), generator).cpu()
                      for b in x.split(batch)]).mean().item()


def real_images(dataset: str, split: str = "test") -> torch.Tensor:
    """A split's images as floats in [0, 1]."""
    return data.load(dataset, split).images.float() / 255


def fid_floor(dataset: str, n: int = 10_000, seed: int = 0) -> float:
    """FID of n real training images against the test set: the best a model can hope for."""
    train = real_images(dataset, "train")
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
    return fid(train[pick], real_images(dataset), classifier(dataset))


def evaluate(name: str, n: int = 10_000, seed: int = 0, k: int = 500) -> dict:
    """Every metric that applies to the shipped model `name`, from n samples."""
    model, info = pretrained.load(name), pretrained.history(name).info
    dataset = str(info["dataset"])
    clf, test = classifier(dataset), data.load(dataset, "test")
    real = test.images.float() / 255
    row: dict = {"model": name, "dataset": dataset, "parameters": info["parameters"],
                 "train_time_s": info["wall_time_s"], "device": info["device"]}
    if isinstance(model, Generative):
        sizes = [1000] * (n // 1000) + [n % 1000] * bool(n % 1000)  # batches of at most 1000
        fake = torch.cat([model.sample(m, seed=seed + i) for i, m in enumerate(sizes)])
        probs = clf.predict(fake)
        shares = coverage(probs)
        row.update(fid=fid(fake, real, clf), inception_score=inception_score(probs),
                   coverage=shares.tolist(), coverage_min=shares.min().item())
    if isinstance(model, VAE):
        torch.manual_seed(seed)
        row.update(elbo=elbo(model, real), log_likelihood=iw_log_likelihood(model, real, k))
    if isinstance(model, InfoGAN):
        row.update(infogan_code_accuracy(model, clf, test, n, seed))
    if isinstance(model, RealNVP):
        row.update(bits_per_dim=flow_bits_per_dim(model, real, seed=seed))
    if "log_likelihood" in row:
        row.update(bits_per_dim=bits_per_dim(row["log_likelihood"]))
    return row


RECORD = pretrained.WEIGHTS / "metrics.json"


def recorded() -> list[dict]:
    """The metrics measured on the shipped models by `python -m gentut.metrics`."""
    return json.loads(RECORD.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gentut.metrics",
                                     description="Measure shipped models; update the record.")
    parser.add_argument("names", nargs="*", help="models (default: every shipped generator)")
    parser.add_argument("-n", type=int, default=10_000, help="samples per model")
    parser.add_argument("-k", type=int, default=500, help="importance samples for log p(x)")
    args = parser.parse_args()
    names = args.names or [n for n in pretrained.available()
                           if isinstance(pretrained.recipe_of(n).family(), Generative)]
    rows = {r["model"]: r for r in recorded()} if RECORD.exists() else {}
    floors: dict[str, float] = {}
    for name in names:
        start = time.time()
        row = evaluate(name, args.n, k=args.k)
        dataset = row["dataset"]
        if dataset not in floors:
            floors[dataset] = fid_floor(dataset, args.n)
        row.update(fid_floor=floors[dataset], evaluation_s=time.time() - start,
                   samples=args.n)
        for key in ("q_confusion", "g_confusion"):
            if key in row:
                row[key] = row[key].tolist()
        rows[name] = row
        print(json.dumps({k: v for k, v in row.items() if "confusion" not in k}), flush=True)
    order = list(pretrained.RECIPES)
    RECORD.write_text(json.dumps(sorted(rows.values(), key=lambda r: order.index(r["model"])),
                                 indent=1) + "\n")


if __name__ == "__main__":
    main()
