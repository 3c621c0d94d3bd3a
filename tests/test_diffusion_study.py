"""The sampling study measures what it claims: on a stand-in whose samples are real test
images, of the class asked for or of another, the numbers come out as they must."""

import pytest
import torch

from gentut import diffusion_study, metrics, models, pretrained
from gentut.models.unet import UNet


class Replay(models.DDPM):
    """A 'model' whose samples are real test images (seeded): any, or of the classes asked
    for shifted by `shift` (0: the class asked for; 1: always the next one)."""

    def __init__(self, test, shift: int = 0) -> None:
        super().__init__(net=UNet(channels=(8, 16, 16)))
        self.images, self.classes, self.shift = test.images.float() / 255, test.labels, shift

    def sample(self, n, seed=None, y=None, **options):
        g = torch.Generator().manual_seed(seed)
        if y is None:
            return self.images[torch.randperm(len(self.images), generator=g)[:n]]
        y = self.labels(y, n)
        picks = [torch.nonzero(self.classes == (c + self.shift) % 10)[:, 0] for c in y.tolist()]
        return torch.stack([self.images[p[torch.randint(len(p), (1,), generator=g)]][0]
                            for p in picks])


@pytest.fixture(scope="module")
def clf():
    return metrics.classifier("mnist")


@pytest.fixture(scope="module")
def f_real(clf):
    return metrics.features(metrics.real_images("mnist"), clf)


def test_guidance_rows_read_agreement_and_quality(mnist_test, clf, f_real):
    right = diffusion_study.guidance(Replay(mnist_test), "replay", f_real, clf, 500,
                                     omegas=(0.0, 2.0))
    wrong = diffusion_study.guidance(Replay(mnist_test, shift=1), "replay", f_real, clf, 500,
                                     omegas=(2.0,))
    assert [r["evaluations"] for r in right] == [50, 100]  # omega = 2: two predictions a step
    for r in right:  # real images of the class asked for: the classifier's test accuracy
        assert r["agreement"] > 0.97 and r["precision"] > 0.6 and r["recall"] > 0.6
        assert r["fid"] < 20  # about 15 for 500 real training images: FID's bias at small n
    assert wrong[0]["agreement"] < 0.03   # every image is of the next class
    assert wrong[0]["fid"] < 20           # yet the set is as real as before


def test_sampling_rows_count_evaluations_and_time(mnist_test, clf, f_real):
    rows = diffusion_study.sampling(Replay(mnist_test), "replay", f_real, clf, 300,
                                    configs=[("ddim", 10), ("ancestral", 1000)])
    assert [(r["sampler"], r["evaluations"]) for r in rows] == [("ddim", 10), ("ancestral", 1000)]
    assert rows[0]["fid"] == rows[1]["fid"] < 30  # the same seeded images, real ones
    assert all(0 < r["seconds_per_64"] < 5 for r in rows)


def test_cost_times_one_unet_evaluation(mnist_test):
    rows = diffusion_study.cost(Replay(mnist_test), "replay")
    assert [r["pass"] for r in rows] == ["one U-Net evaluation"]
    assert 0 < rows[0]["seconds_per_64"] < 5


def test_study_replaces_the_named_models_rows_and_keeps_the_others(mnist_test, monkeypatch):
    load = pretrained.load
    monkeypatch.setattr(pretrained, "load", lambda name, device="cpu": (
        Replay(mnist_test) if name == "diffusion-mnist" else load(name, device)))
    old = {"guidance": [{"model": "diffusion-mnist", "fid": -1.0},
                        {"model": "other", "fid": -2.0}], "sampling": [], "cost": []}
    record = diffusion_study.study(["diffusion-mnist"], n=200, only={"guidance"}, record=old)
    mine = [r for r in record["guidance"] if r["model"] == "diffusion-mnist"]
    assert [r["guidance"] for r in mine] == list(diffusion_study.OMEGAS)
    assert all(r["fid"] >= 0 and r["dataset"] == "mnist" and "machine" in r for r in mine)
    assert {"model": "other", "fid": -2.0} in record["guidance"]
    floor = [r for r in record["floor"] if r["dataset"] == "mnist"]
    assert len(floor) == 1 and floor[0]["samples"] == 200 and floor[0]["fid"] > 0


def test_a_model_that_is_not_diffusion_is_refused():
    with pytest.raises(ValueError, match="not a diffusion"):
        diffusion_study.study(["dcgan-mnist"], n=10, only={"sampling"})
