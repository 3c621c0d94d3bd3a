"""Each metric measures what it claims, on real data and on cases with known answers."""

import math

import pytest
import torch

from gentut import metrics, models


@pytest.fixture(scope="module")
def clf(mnist):
    """A briefly trained classifier: enough for features that tell digits apart."""
    from gentut import data, train

    torch.manual_seed(0)
    c = models.Classifier()
    train.fit(c, data.Batches(mnist, 128, device="cpu", limit=6400), 150, progress=False)
    return c.eval()


def test_fid_is_zero_for_a_set_against_itself_and_grows_with_damage(clf, mnist, mnist_test):
    real = mnist_test.images[:2000].float() / 255
    other = mnist.images[:2000].float() / 255
    same = metrics.fid(real, real, clf)
    floor = metrics.fid(other, real, clf)
    blurred = torch.nn.functional.avg_pool2d(other, 3, 1, 1)
    noise = torch.rand(2000, 1, 28, 28)
    assert abs(same) < 1e-3
    assert floor < metrics.fid(blurred, real, clf) < metrics.fid(noise, real, clf)


def test_inception_score_bounds():
    confident = torch.eye(10).repeat(10, 1)  # sure, and spread over all 10 classes
    assert math.isclose(metrics.inception_score(confident), 10, rel_tol=1e-6)
    one_class = torch.zeros(100, 10)
    one_class[:, 3] = 1
    assert math.isclose(metrics.inception_score(one_class), 1, rel_tol=1e-6)
    unsure = torch.full((100, 10), 0.1)
    assert math.isclose(metrics.inception_score(unsure), 1, rel_tol=1e-6)


def test_coverage_counts_each_class_share():
    probs = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 9]), 10).float()
    shares = metrics.coverage(probs)
    assert shares[0] == 0.5 and shares[1] == 0.25 and shares[9] == 0.25 and shares.sum() == 1


def test_matched_accuracy_undoes_a_permutation_of_codes():
    labels = torch.arange(1000) % 10
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    codes = perm[labels]
    codes[:50] = (codes[:50] + 1) % 10  # 5% errors
    acc, confusion = metrics.matched_accuracy(codes, labels)
    assert acc == pytest.approx(0.95)
    assert confusion.sum() == 1000
    assert metrics.matching(confusion)[perm].tolist() == list(range(10))  # code perm[k] -> k


def test_classifier_features_reach_high_accuracy_quickly(clf, mnist_test):
    assert clf.accuracy(mnist_test.images[:2000].float() / 255, mnist_test.labels[:2000]) > 0.9


def test_importance_weighting_tightens_the_elbo(mnist_test):
    from gentut import data, train

    torch.manual_seed(0)
    vae = models.VAE()
    train.fit(vae, data.Batches(data.load("mnist"), 100, device="cpu", limit=5000), 300,
              progress=False)
    vae.eval()
    x = mnist_test.images[:200].float() / 255
    torch.manual_seed(1)
    bound = metrics.elbo(vae, x)
    ll_1 = metrics.iw_log_likelihood(vae, x, k=1)
    ll_100 = metrics.iw_log_likelihood(vae, x, k=100)
    assert abs(ll_1 - bound) < 0.02 * abs(bound)  # k = 1 is the ELBO
    assert bound < ll_100 < 0  # a tighter bound, still a log-probability of a density below 1


def test_infogan_code_accuracy_of_an_untrained_model_is_near_chance(clf, mnist_test):
    from gentut import data

    torch.manual_seed(0)
    model = models.InfoGAN()
    test = data.Dataset(mnist_test.images[:1000], mnist_test.labels[:1000], mnist_test.classes)
    result = metrics.infogan_code_accuracy(model, clf, test, n=1000)
    assert 0.09 < result["q_accuracy"] < 0.4 and 0.09 < result["g_accuracy"] < 0.4
    assert result["q_confusion"].shape == (10, 10) and result["q_confusion"].sum() == 1000
    assert result["g_confusion"].sum() == 1000


def test_evaluate_a_shipped_model_on_few_samples():
    row = metrics.evaluate("vae-mnist", n=1500, k=2)
    assert row["model"] == "vae-mnist" and row["fid"] > 0
    assert len(row["coverage"]) == 10 and abs(sum(row["coverage"]) - 1) < 1e-5
    assert row["elbo"] < row["log_likelihood"] + 5 and row["log_likelihood"] < 0
    assert row["bits_per_dim"] == pytest.approx(-row["log_likelihood"] / (784 * math.log(2)))


@pytest.mark.parametrize("name", ["dcgan-mnist", "dcgan-fashion"])
def test_shipped_dcgan_draws_every_class_at_least_5_percent(name):
    """The course's coverage target, counted as the comparison chapter counts it (10,000
    samples), on the shipped file; and the recorded metrics are that file's."""
    from gentut import pretrained

    recorded = {row["model"]: row for row in metrics.recorded()}[name]
    model = pretrained.load(name)
    fake = torch.cat([model.sample(1000, seed=i) for i in range(10)])
    shares = metrics.coverage(metrics.classifier(recorded["dataset"]).predict(fake))
    assert shares.min() >= 0.05
    assert shares.tolist() == pytest.approx(recorded["coverage"], abs=2e-4)


def test_bits_per_dim_converts_nats_and_scores_a_flow(mnist_test):
    assert metrics.bits_per_dim(-784 * math.log(2)) == pytest.approx(1.0)
    x = mnist_test.images[:64].float() / 255
    flow = models.RealNVP()  # at initialization: the logit transform and a Gaussian base
    a, b = metrics.flow_bits_per_dim(flow, x), metrics.flow_bits_per_dim(flow, x)
    assert a == b and 0 < a < 16  # seeded dequantization; finite, above zero


def test_precision_tracks_quality_and_recall_tracks_diversity(clf, mnist, mnist_test):
    real = mnist_test.images[:1000].float() / 255
    other = mnist.images[:1000].float() / 255
    precision, recall = metrics.precision_recall(other, real, clf)
    assert precision > 0.6 and recall > 0.6
    noise_precision, _ = metrics.precision_recall(torch.rand(1000, 1, 28, 28), real, clf)
    assert noise_precision < 0.05
    one_image = other[:1].expand(1000, -1, -1, -1)
    collapsed_precision, collapsed_recall = metrics.precision_recall(one_image, real, clf)
    assert collapsed_recall < 0.05 < collapsed_precision
