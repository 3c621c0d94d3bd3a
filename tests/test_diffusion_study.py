"""The sampling study measures what it claims: on a stand-in whose samples are real test
images, of the class asked for or of another, the numbers come out as they must."""

import pytest
import torch

from gentut import diffusion_study, metrics, models, pretrained
from gentut.models.unet import CHANNELS, Attention, UNet


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


def test_cost_times_one_unet_evaluation_and_one_of_the_guide(mnist_test):
    model = Replay(mnist_test)
    rows = diffusion_study.cost(model, "replay")
    assert [r["pass"] for r in rows] == ["one U-Net evaluation"]
    assert 0 < rows[0]["seconds_per_64"] < 5
    model.attach_guide(models.DDPM(net=UNet(channels=(8, 8, 8))))
    rows = diffusion_study.cost(model, "replay")
    assert [r["pass"] for r in rows] == ["one U-Net evaluation", "one guide evaluation"]
    assert all(0 < r["seconds_per_64"] < 5 for r in rows)


def test_autoguidance_rows_sweep_omega_and_count_the_guide(mnist_test, clf, f_real):
    model = Replay(mnist_test)
    model.attach_guide(models.DDPM(net=UNet(channels=(8, 8, 8))))
    rows = diffusion_study.autoguidance(model, "replay", f_real, clf, 300, omegas=(1.0, 2.0))
    assert [(r["guidance"], r["evaluations"]) for r in rows] == [(1.0, 50), (2.0, 100)]
    assert all(r["fid"] < 30 and 0 < r["precision"] <= 1 and 0 < r["recall"] <= 1
               for r in rows)  # the stand-in draws real images


def test_attention_ablation_trains_two_variants_that_differ_by_the_attention(clf, f_real):
    rows = diffusion_study.attention("diffusion-mnist", f_real, clf, 200, iterations=2)
    assert [(r["attention"], r["iterations"]) for r in rows] == [(True, 2), (False, 2)]
    block = sum(p.numel() for p in Attention(CHANNELS[2]).parameters())
    assert rows[0]["parameters"] - rows[1]["parameters"] == block
    # two iterations from a zero-initialized output: both draw noise, far from digits
    assert all(r["fid"] > 100 and r["seconds_per_64"] > 0 for r in rows)


def test_study_replaces_the_rows_it_measures_and_keeps_the_others(mnist_test, monkeypatch):
    load = pretrained.load
    monkeypatch.setattr(pretrained, "load", lambda name, device="cpu": (
        Replay(mnist_test) if name == "diffusion-mnist" else load(name, device)))
    kept = [{"model": "diffusion-mnist", "guidance": 7.0, "fid": -3.0},  # not measured again
            {"model": "other", "guidance": 2.0, "fid": -2.0}]
    old = {"guidance": [{"model": "diffusion-mnist", "guidance": 2.0, "fid": -1.0}, *kept],
           "sampling": [{"model": "diffusion-mnist", "sampler": "ddim", "steps": 10, "fid": -1.0},
                        {"model": "diffusion-mnist", "sampler": "ddim", "steps": 20,
                         "fid": -4.0}], "cost": []}
    record = diffusion_study.study(["diffusion-mnist"], n=200, only={"guidance", "sampling"},
                                   record=old, configs=[("ddim", 10), ("ancestral", 50)])
    mine = [r for r in record["guidance"] if r["model"] == "diffusion-mnist" and r["fid"] >= 0]
    assert [r["guidance"] for r in mine] == list(diffusion_study.OMEGAS)
    assert all(r["dataset"] == "mnist" and "machine" in r for r in mine)
    assert all(r in record["guidance"] for r in kept) and len(record["guidance"]) == 7
    assert sorted((r["sampler"], r["steps"], r["fid"] >= 0) for r in record["sampling"]) == [
        ("ancestral", 50, True), ("ddim", 10, True), ("ddim", 20, False)]
    floor = [r for r in record["floor"] if r["dataset"] == "mnist"]
    assert len(floor) == 1 and floor[0]["samples"] == 200 and floor[0]["fid"] > 0


def test_the_command_line_takes_sampling_points(monkeypatch, tmp_path):
    calls = {}

    def fake_study(*args):
        calls["args"] = args
        return {"sampling": []}

    monkeypatch.setattr(diffusion_study, "RECORD", tmp_path / "study.json")
    monkeypatch.setattr(diffusion_study, "study", fake_study)
    diffusion_study.main(["diffusion-mnist", "--only", "sampling",
                          "--configs", "ancestral:50,ddim:10"])
    assert calls["args"][2] == {"sampling"}
    assert calls["args"][5] == [("ancestral", 50), ("ddim", 10)]
    assert calls["args"][6] == diffusion_study.ABLATION_ITERATIONS
    assert (tmp_path / "study.json").read_text() == '{\n "sampling": []\n}\n'
