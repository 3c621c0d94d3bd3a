"""How good are the samples, and how likely are the data: the comparison's measurements.

Sample quality is measured with the course's evaluation classifier for each data set
(`classifier-mnist`, `classifier-fashion`): FID in its 128-dimensional feature space (with
torchmetrics' implementation), improved precision and recall there, the classifier-based
Inception Score, and class shares (each class's fraction of the samples). InfoGAN's
categorical code is scored as a classifier both ways, after matching codes to labels
one-to-one. The models with a likelihood get it on the test set: the VAEs their ELBO and an
importance-weighted estimate of log p(x), in nats; the flow its exact bits per dimension.
What training cost comes from `gentut.cost`. `book/measures.md` defines every measure.
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

from . import cost, data, pretrained
from .models import VAE, Classifier, FlowMatching, Generative, InfoGAN, RealNVP
from .models.vae import bce, negative_elbo, reparameterize

# Where the shipped runs trained whose histories predate `fit` recording the machine (they
# record the device type only): the recipes' notes in gentut/pretrained.py
EARLY_MACHINES = {"cuda": "NVIDIA H200", "cpu": "the 2-core CPU"}


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


def features(x: torch.Tensor, clf: Classifier, batch: int = 250) -> torch.Tensor:
    """The classifier's 128 features of images x in [0, 1], one row per image, in float64
    (batches of 250: the fastest size on a 2-core CPU, and the same values as any other)."""
    f = Features(clf)
    return torch.cat([f(b) for b in x.split(batch)])


def fid(fake: torch.Tensor, real: torch.Tensor, clf: Classifier, batch: int = 1000) -> float:
    """Fréchet distance between the feature Gaussians of two image sets in [0, 1]."""
    metric = FrechetInceptionDistance(feature=Features(clf), normalize=True,
                                      input_img_size=(1, 28, 28))
    for images, is_real in ((real, True), (fake, False)):
        for b in images.split(batch):
            metric.update(b, real=is_real)
    return metric.compute().item()


def fid_from_features(f_fake: torch.Tensor, f_real: torch.Tensor) -> float:
    """`fid` from feature rows computed once (see `features`): the same formula, unbiased
    covariances, tr (S_r S_g)^(1/2) as the sum of the square roots of S_r S_g's eigenvalues."""
    mu_g, mu_r = f_fake.mean(0), f_real.mean(0)
    s_g, s_r = f_fake.T.cov(), f_real.T.cov()
    root = torch.linalg.eigvals(s_r @ s_g).sqrt().real.sum()
    return ((mu_r - mu_g).square().sum() + s_r.trace() + s_g.trace() - 2 * root).item()


def _inside(points: torch.Tensor, support: torch.Tensor, k: int, chunk: int) -> float:
    """The share of `points` inside the union of balls around each `support` row that reach
    its k-th nearest neighbour in `support` (computed in chunks of rows, to bound memory)."""
    radii = torch.cat([torch.cdist(s, support).kthvalue(k + 1, dim=1).values  # +1: itself
                       for s in support.split(chunk)])
    hits = torch.cat([(torch.cdist(p, support) <= radii).any(1) for p in points.split(chunk)])
    return hits.double().mean().item()


def precision_recall(fake: torch.Tensor, real: torch.Tensor, clf: Classifier,
                     k: int = 3, chunk: int = 1000) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019) in the classifier's feature
    space. Each set's support is the union of balls reaching each point's k-th nearest
    neighbour in it; precision is the share of samples inside the real images' support
    (quality), recall the share of real images inside the samples' (diversity)."""
    return precision_recall_from_features(features(fake, clf), features(real, clf), k, chunk)


def precision_recall_from_features(f_fake: torch.Tensor, f_real: torch.Tensor, k: int = 3,
                                   chunk: int = 1000) -> tuple[float, float]:
    """`precision_recall` from feature rows computed once (see `features`)."""
    return _inside(f_fake, f_real, k, chunk), _inside(f_real, f_fake, k, chunk)


def inception_score(probs: torch.Tensor) -> float:
    """exp E_x KL(p(y|x) || p(y)): up to 10 for confident predictions spread over 10 classes."""
    p_y = probs.mean(0, keepdim=True)
    kl = (probs * (torch.log(probs + 1e-12) - torch.log(p_y + 1e-12))).sum(1)
    return math.exp(kl.mean().item())


def class_shares(probs: torch.Tensor) -> torch.Tensor:
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
        total -= negative_elbo(vae.decoder(reparameterize(mu, logvar)), b, mu, logvar).sum().item()
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
def flow_bits_per_dim(flow: RealNVP | FlowMatching, x: torch.Tensor, batch: int = 500,
                      seed: int = 0) -> float:
    """A flow's exact test bits per dimension on 8-bit images x in [0, 1], one uniform
    dequantization per image (seeded): RealNVP's by its change of variables, flow
    matching's through its ODE (one Hutchinson probe per image, seeded too)."""
    generator = torch.Generator().manual_seed(seed)
    flow.eval()
    return torch.cat([flow.bits_per_dim(b.to(flow.device), generator).cpu()
                      for b in x.split(batch)]).mean().item()


def real_images(dataset: str, split: str = "test") -> torch.Tensor:
    """A split's images as floats in [0, 1]."""
    return data.load(dataset, split).images.float() / 255


def real_train_pick(dataset: str, n: int = 10_000, seed: int = 0) -> torch.Tensor:
    """n training images drawn without replacement (seeded): the perfect generator's stand-in."""
    train = real_images(dataset, "train")
    return train[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]]


def fid_floor(dataset: str, n: int = 10_000, seed: int = 0) -> float:
    """FID of n real training images against the test set: what a perfect generator scores
    in expectation with n samples (a reference, not a bound: a model may land below it)."""
    return fid(real_train_pick(dataset, n, seed), real_images(dataset), classifier(dataset))


def reference(dataset: str, n: int = 10_000, seed: int = 0) -> dict:
    """Every sample measure of n real training images against the test set, as a model's
    samples are measured: FID (the floor), precision, recall, Inception Score, class shares."""
    clf, fake, real = classifier(dataset), real_train_pick(dataset, n, seed), real_images(dataset)
    precision, recall = precision_recall(fake, real, clf)
    probs = clf.predict(fake)
    return {"fid_floor": fid(fake, real, clf), "real_precision": precision,
            "real_recall": recall, "real_inception_score": inception_score(probs),
            "real_class_shares_min": class_shares(probs).min().item()}


def draw(model: Generative, n: int = 10_000, seed: int = 0, y: torch.Tensor | None = None,
         **options) -> torch.Tensor:
    """The n samples every sample measure uses: batches of at most 1000, seeds seed, seed+1...
    `y` (n class labels) and `options` (a diffusion model's sampler, steps and guidance) go
    to `model.sample`, batch by batch."""
    sizes = [1000] * (n // 1000) + [n % 1000] * bool(n % 1000)
    labels = [None] * len(sizes) if y is None else y.split(1000)
    return torch.cat([model.sample(m, seed=seed + i, **options, **({} if c is None else {"y": c}))
                      for i, (m, c) in enumerate(zip(sizes, labels, strict=True))])


# Flow matching's likelihood solves an ODE in flowmatch.LIKELIHOOD_STEPS Heun steps, 200
# network evaluations and as many backward passes per image, so it is scored on the first
# ODE_TEST_IMAGES test images (the flow chapter's RealNVP, one pass per image, on all 10,000)
ODE_TEST_IMAGES = 1_000

# What `python -m gentut.metrics --only ...` can refresh; "facts" (read from the shipped
# file's history, free) are refreshed on every run.
GROUPS = {
    "samples": "FID, Inception Score and class shares of n samples",
    "precision_recall": "improved precision and recall of the same n samples (k = 3)",
    "reference": "the same measures for n real training images: the FID floor, "
                 "real-against-real precision and recall",
    "likelihood": "the VAEs' ELBO and importance-weighted log p(x) (about 20 min at "
                  "k = 500 on a 2-core CPU); the flows' exact bits per dimension (flow "
                  f"matching's on the first {ODE_TEST_IMAGES:,} test images)",
    "codes": "InfoGAN's categorical code as a classifier",
    "cost": "seconds per training iteration timed here (gentut.cost) x the recipe's "
            "iterations",
    "sampling": "seconds to draw 64 samples with the model's default sampler, here",
}


def facts(name: str) -> dict:
    """What the shipped file's history records: size, length of training, where and how long;
    and its guide's, where it has one."""
    h = pretrained.history(name)
    info = h.info
    device = str(info["device"])
    row = {"model": name, "dataset": str(info["dataset"]), "parameters": info["parameters"],
           "iterations": h.steps, "batch_size": info["batch_size"],
           "images_seen": h.steps * int(info["batch_size"]), "bf16": bool(info["bf16"]),
           "train_time_s": info["wall_time_s"], "device": device,
           "device_name": str(info.get("machine", EARLY_MACHINES[device.split(":")[0]]))}
    for guide in _guide_of(name):
        g = pretrained.history(guide)
        row.update(guide_parameters=g.info["parameters"], guide_iterations=g.steps,
                   guide_train_time_s=g.info["wall_time_s"],
                   guide_device_name=str(g.info["machine"]))
    return row


def evaluate(model: str | nn.Module, dataset: str | None = None, *, n: int = 10_000,
             seed: int = 0, k: int = 500, only: set[str] | None = None,
             ode_images: int = ODE_TEST_IMAGES) -> dict:
    """The measures of groups `only` (default: all but "reference" and "cost", which
    `measure` takes once per data set and per network) for `model`: a shipped name (its
    data set and training facts come from its file), or a model you trained, with the
    `dataset` it models ("mnist" or "fashion"; it is scored on the CPU, moved there).
    Flow matching's likelihood is scored on the first `ode_images` test images."""
    only = set(GROUPS) - {"reference", "cost"} if only is None else only
    if isinstance(model, str):
        row = facts(model)
        model, dataset = pretrained.load(model), row["dataset"]
    else:
        if dataset not in data.DATASETS:
            raise ValueError(f"evaluate(model, dataset): name the data set the model was "
                             f"trained on, one of {sorted(data.DATASETS)} (got {dataset!r})")
        row = {"model": type(model).__name__, "dataset": dataset}
        model = model.cpu()
    clf, test = classifier(dataset), data.load(dataset, "test")
    real = test.images.float() / 255
    if isinstance(model, Generative) and only & {"samples", "precision_recall"}:
        fake = draw(model, n, seed)
        if "samples" in only:
            probs = clf.predict(fake)
            shares = class_shares(probs)
            rarest = shares.argmin().item()
            row.update(fid=fid(fake, real, clf), inception_score=inception_score(probs),
                       class_shares=shares.tolist(), class_shares_min=shares.min().item(),
                       rarest_class=data.DATASETS[dataset][1][rarest], samples=n)
        if "precision_recall" in only:
            row["precision"], row["recall"] = precision_recall(fake, real, clf)
    if isinstance(model, VAE) and "likelihood" in only:
        torch.manual_seed(seed)
        # nats under a Bernoulli model of gray values: no bits per dimension of 8-bit pixels
        row.update(elbo=elbo(model, real), log_likelihood=iw_log_likelihood(model, real, k),
                   importance_samples=k)
    if isinstance(model, RealNVP) and "likelihood" in only:
        # also on flow matching's images, so that the diffusion chapter compares like for like
        row.update(bits_per_dim=flow_bits_per_dim(model, real, seed=seed),
                   likelihood_images=len(real), ode_subset_images=ode_images,
                   ode_subset_bits_per_dim=flow_bits_per_dim(model, real[:ode_images],
                                                             seed=seed))
    if isinstance(model, FlowMatching) and "likelihood" in only:
        row.update(bits_per_dim=flow_bits_per_dim(model, real[:ode_images], seed=seed),
                   likelihood_images=ode_images)
    if isinstance(model, Generative) and "sampling" in only:
        row["sample_seconds_per_64"] = cost.sampling_seconds(model)
    if isinstance(model, InfoGAN) and "codes" in only:
        row.update(infogan_code_accuracy(model, clf, test, n, seed))
    return row


RECORD = pretrained.WEIGHTS / "metrics.json"


def recorded() -> list[dict]:
    """The metrics measured on the shipped models by `python -m gentut.metrics`."""
    return json.loads(RECORD.read_text())


def measure(names: list[str], n: int = 10_000, k: int = 500, only: set[str] | None = None,
            steps: int = cost.STEPS, rows: dict[str, dict] | None = None,
            log: bool = False, ode_images: int = ODE_TEST_IMAGES) -> dict[str, dict]:
    """Measure the groups `only` (default: all) of each shipped model in `names`, on top of
    `rows` (the recorded ones, say): the reference once per data set, the cost once per
    network (`cost.group`), written into every row of that network, asked for or not, so that
    one network never shows two timings (a row without one, training or sampling, takes its
    network's recorded timing); flow matching's likelihood on the first `ode_images` test
    images."""
    only = set(GROUPS) if only is None else only
    rows = {} if rows is None else rows
    references: dict[str, dict] = {}
    timings: dict[str, dict] = {}
    for name in names:
        start = time.time()
        row = rows.get(name, {})
        row.update(evaluate(name, n=n, k=k, only=only, ode_images=ode_images))
        if "reference" in only:
            if row["dataset"] not in references:
                references[row["dataset"]] = reference(row["dataset"], n)
            row.update(references[row["dataset"]])
        if "cost" in only:
            for part in [name, *_guide_of(name)]:  # a model's guide is part of its training
                group = cost.group(part)
                if group not in timings:
                    timings[group] = cost.seconds_per_iteration(group, steps)
            _cost_fields(row, timings[cost.group(name)])
        row["evaluation_s"] = time.time() - start
        for key in ("q_confusion", "g_confusion"):
            if key in row and not isinstance(row[key], list):
                row[key] = row[key].tolist()
        rows[name] = row
        if log:
            print(json.dumps({k: v for k, v in row.items() if "confusion" not in k}), flush=True)
    for name, row in rows.items():  # one timing per network: also the rows not in `names`
        group = cost.group(name)
        timed = [r for other, r in rows.items() if cost.group(other) == group]
        if group not in timings and "cpu_seconds_per_iteration" not in row:
            timings[group] = next((_recorded_timing(r) for r in timed
                                   if "cpu_seconds_per_iteration" in r), None)
        if timings.get(group):
            _cost_fields(row, timings[group])
        for guide in _guide_of(name):
            if cost.group(guide) in timings:
                _guide_cost_fields(row, timings[cost.group(guide)], guide)
        if "sample_seconds_per_64" not in row:  # the same network draws as fast
            row.update(next(({"sample_seconds_per_64": r["sample_seconds_per_64"]}
                             for r in timed if "sample_seconds_per_64" in r), {}))
    return rows


def _guide_of(name: str) -> list[str]:
    """The shipped name of `name`'s guide, in a list, or an empty list."""
    guide = f"{name}{pretrained.GUIDE}"
    return [guide] if guide in pretrained.GUIDES else []


def _guide_cost_fields(row: dict, t: dict, guide: str) -> None:
    """Write the timing `t` of the guide's network, and what its recipe's training costs,
    into `row`; the row's training cost is the model's and its guide's."""
    iterations = pretrained.history(guide).steps
    row.update(guide_cpu_seconds_per_iteration=t["seconds_per_iteration"],
               guide_iterations=iterations,
               guide_cpu_training_s=t["seconds_per_iteration"] * iterations)
    row["cpu_training_s"] = _training_s(row)


def _training_s(row: dict) -> float:
    """What the row's recipe costs to train on the timed CPU: its network's iterations, and
    its guide's where it has one."""
    return (row["cpu_seconds_per_iteration"] * row["iterations"]
            + row.get("guide_cpu_training_s", 0.0))


def _recorded_timing(row: dict) -> dict:
    """The timing of the row's network as `cost.seconds_per_iteration` returned it."""
    return dict(seconds_per_iteration=row["cpu_seconds_per_iteration"],
                machine=row["cost_machine"], model=row["cost_timed"], steps=row["cost_steps"],
                cpu_share=row["cost_cpu_share"], load_average=row["cost_load_average"])


def _cost_fields(row: dict, t: dict) -> None:
    """Write the timing `t` of the row's network, and the training cost it implies (with its
    guide's, where it has one), into `row`."""
    row.update(cpu_seconds_per_iteration=t["seconds_per_iteration"],
               cost_machine=t["machine"], cost_timed=t["model"], cost_steps=t["steps"],
               cost_cpu_share=t["cpu_share"], cost_load_average=t["load_average"])
    row["cpu_training_s"] = _training_s(row)


def main(argv: list[str] | None = None) -> None:
    groups = "\n".join(f"  {g}: {text}" for g, text in GROUPS.items())
    parser = argparse.ArgumentParser(
        prog="python -m gentut.metrics", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Measure the shipped models and update gentut/weights/metrics.json.",
        epilog=f"groups of measures (--only):\n{groups}\n\n"
               "Fields of groups not asked for keep their recorded values; the facts read "
               "from each\nshipped file's history are refreshed on every run. Example, without "
               "the expensive\nlikelihoods: python -m gentut.metrics --only "
               "samples,precision_recall,reference,cost")
    parser.add_argument("names", nargs="*", help="models (default: every shipped generator)")
    parser.add_argument("--only", default=",".join(GROUPS), metavar="GROUP[,GROUP...]",
                        help="the groups to measure (default: all of them)")
    parser.add_argument("-n", type=int, default=10_000, help="samples per model")
    parser.add_argument("-k", type=int, default=500, help="importance samples for log p(x)")
    parser.add_argument("--steps", type=int, default=cost.STEPS,
                        help="timed training iterations per network (cost)")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    if only - set(GROUPS):
        parser.error(f"unknown groups {sorted(only - set(GROUPS))}: choose from {list(GROUPS)}")
    names = args.names or [n for n in pretrained.available()
                           if isinstance(pretrained.recipe_of(n).family(), Generative)]
    rows = {r["model"]: r for r in recorded()} if RECORD.exists() else {}
    rows = measure(names, args.n, args.k, only, args.steps, rows, log=True)
    order = list(pretrained.RECIPES)
    RECORD.write_text(json.dumps(sorted(rows.values(), key=lambda r: order.index(r["model"])),
                                 indent=1) + "\n")

if __name__ == "__main__":
    main()
