"""Each metric measures what it claims, on real data and on cases with known answers."""

import math

import pytest
import torch

from gentut import cost, metrics, models, pretrained


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


def test_class_shares_counts_each_class_share():
    probs = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 9]), 10).float()
    shares = metrics.class_shares(probs)
    assert shares[0] == 0.5 and shares[1] == 0.25 and shares[9] == 0.25 and shares.sum() == 1


def test_fid_from_features_is_torchmetrics_fid(clf, mnist, mnist_test):
    real = mnist_test.images[:1500].float() / 255
    fake = torch.nn.functional.avg_pool2d(mnist.images[:1000].float() / 255, 3, 1, 1)
    once = metrics.fid_from_features(metrics.features(fake, clf), metrics.features(real, clf))
    assert once == pytest.approx(metrics.fid(fake, real, clf), rel=1e-6)
    assert once > 1  # blurred images are far from the test set: not a trivial agreement


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


def test_evaluate_scores_a_model_in_hand_as_its_shipped_name():
    """A reader's own model is scored by the same code: the shipped GAN, passed as a model,
    gets the same FID and class shares from the same seeds as its name does."""
    by_name = metrics.evaluate("gan-mnist", n=500, only={"samples"})
    in_hand = metrics.evaluate(pretrained.load("gan-mnist"), "mnist", n=500, only={"samples"})
    assert in_hand["model"] == "GAN" and in_hand["dataset"] == "mnist"
    assert in_hand["fid"] == by_name["fid"] and in_hand["class_shares"] == by_name["class_shares"]
    with pytest.raises(ValueError, match="name the data set"):
        metrics.evaluate(models.GAN(), "cifar10", n=10)


def test_evaluate_a_shipped_model_on_few_samples():
    row = metrics.evaluate("vae-mnist", n=1500, k=2)
    assert row["model"] == "vae-mnist" and row["fid"] > 0
    assert len(row["class_shares"]) == 10 and abs(sum(row["class_shares"]) - 1) < 1e-5
    assert 0 < row["precision"] < 1 and 0 < row["recall"] < 1
    assert row["images_seen"] == row["iterations"] * row["batch_size"] == 24000 * 100
    assert row["elbo"] < row["log_likelihood"] + 5 and row["log_likelihood"] < 0
    assert "bits_per_dim" not in row  # a Bernoulli model of gray values has none of 8-bit pixels


def test_evaluate_scores_flow_matching_by_its_ode_likelihood():
    """A flow-matching model gets bits per dimension on the first `ode_images` test
    images (RealNVP on all of them); an untrained velocity field (the U-Net's last
    layer starts at zero, so v = 0: the identity flow) scores the standard normal's bits."""
    from gentut.models.unet import UNet

    row = metrics.evaluate(models.FlowMatching(net=UNet(channels=(8, 16, 16))), "mnist",
                           only={"likelihood"}, ode_images=20)
    assert row["likelihood_images"] == 20
    x = metrics.real_images("mnist")[:20]
    # v = 0: log p(x~) = log N(2 x~ - 1; 0, I) + d log 2, with x~ the dequantized image
    expected = (8 - (math.log(2) - 0.5 * math.log(2 * math.pi)
                     - 0.5 * (2 * x - 1).pow(2).flatten(1).mean(1)) / math.log(2)).mean().item()
    assert row["bits_per_dim"] == pytest.approx(expected, abs=0.02)  # up to dequantization


@pytest.mark.parametrize("name", ["dcgan-mnist", "dcgan-fashion"])
def test_shipped_dcgan_draws_every_class_at_least_5_percent(name):
    """The course's coverage target, counted as the comparison chapter counts it (10,000
    samples), on the shipped file; and the recorded metrics are that file's."""
    from gentut import pretrained

    recorded = {row["model"]: row for row in metrics.recorded()}[name]
    model = pretrained.load(name)
    fake = torch.cat([model.sample(1000, seed=i) for i in range(10)])
    shares = metrics.class_shares(metrics.classifier(recorded["dataset"]).predict(fake))
    assert shares.min() >= 0.05
    assert shares.tolist() == pytest.approx(recorded["class_shares"], abs=2e-4)


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


def test_precision_recall_in_chunks_is_the_same_as_in_one_piece(clf, mnist, mnist_test):
    real = mnist_test.images[:700].float() / 255
    fake = mnist.images[:600].float() / 255
    assert (metrics.precision_recall(fake, real, clf, chunk=1000)
            == metrics.precision_recall(fake, real, clf, chunk=97))


RECORDED_FIELDS = ("dataset", "parameters", "iterations", "batch_size", "images_seen",
                   "train_time_s", "device", "device_name", "fid", "fid_floor",
                   "inception_score", "class_shares", "class_shares_min", "rarest_class",
                   "precision", "recall", "real_precision",
                   "real_recall", "real_inception_score", "cpu_seconds_per_iteration",
                   "cpu_training_s", "cost_machine", "sample_seconds_per_64")


def test_the_record_has_every_measure_of_every_shipped_generator():
    """metrics.json holds a full row for each shipped generator, read from its file."""
    from gentut import data, pretrained

    rows = {row["model"]: row for row in metrics.recorded()}
    shipped = [n for n in pretrained.available()
               if isinstance(pretrained.recipe_of(n).family(), models.Generative)]
    assert shipped and sorted(rows) == sorted(shipped)
    for name in shipped:
        r, h = rows[name], pretrained.history(name)
        missing = [key for key in RECORDED_FIELDS if key not in r]
        assert not missing, (name, missing)
        assert r["images_seen"] == h.steps * h.info["batch_size"] == r["iterations"] * r[
            "batch_size"], name
        assert r["parameters"] == h.info["parameters"] and r["device"] == h.info["device"]
        assert "coverage" not in r and sum(r["class_shares"]) == pytest.approx(1)
        assert r["class_shares_min"] == min(r["class_shares"])
        classes = data.DATASETS[r["dataset"]][1]
        assert r["rarest_class"] == classes[r["class_shares"].index(r["class_shares_min"])]
        for key in ("precision", "recall", "real_precision", "real_recall"):
            assert 0 < r[key] <= 1, (name, key)
        assert r["cpu_seconds_per_iteration"] > 0
        assert r["cpu_training_s"] == pytest.approx(r["cpu_seconds_per_iteration"]
                                                    * r["iterations"]
                                                    + r.get("guide_cpu_training_s", 0))
        guide = f"{name}{pretrained.GUIDE}"
        if guide in pretrained.GUIDES:  # a guided model's cost and facts include its guide's
            g = pretrained.history(guide)
            assert r["guide_iterations"] == g.steps and r["guide_parameters"] == g.info[
                "parameters"] and r["guide_train_time_s"] == g.info["wall_time_s"], name
            assert r["guide_cpu_training_s"] == pytest.approx(
                r["guide_cpu_seconds_per_iteration"] * g.steps), name
        model = pretrained.recipe_of(name).family()
        if isinstance(model, models.VAE):
            assert r["elbo"] < r["log_likelihood"] < 0, name
            assert "bits_per_dim" not in r, name  # its nats are not bits of 8-bit pixels
        if isinstance(model, models.RealNVP):
            assert 0 < r["bits_per_dim"] < 8, name
    for group in {cost.group(name) for name in rows}:  # one timing per network
        assert len({(r["cpu_seconds_per_iteration"], r["cost_machine"]) for name, r in
                    rows.items() if cost.group(name) == group}) == 1, group
    for d in {r["dataset"] for r in rows.values()}:  # one reference per data set
        assert len({(r["fid_floor"], r["real_recall"]) for r in rows.values()
                    if r["dataset"] == d}) == 1


def test_only_refreshes_the_groups_asked_and_keeps_the_rest(tmp_path, monkeypatch):
    import json
    import shutil

    record = tmp_path / "metrics.json"
    shutil.copy(metrics.RECORD, record)
    monkeypatch.setattr(metrics, "RECORD", record)
    before = {r["model"]: r for r in metrics.recorded()}
    for r in before.values():
        r["cpu_seconds_per_iteration"] = r["sample_seconds_per_64"] = -1.0  # a refresh shows
    record.write_text(json.dumps(list(before.values())))
    metrics.main(["gan-mnist", "--only", "cost", "--steps", "3"])
    after = {r["model"]: r for r in metrics.recorded()}
    assert after["gan-mnist"]["cpu_seconds_per_iteration"] > 0  # measured again
    assert after["gan-mnist"]["cost_steps"] == 3
    assert after["gan-mnist"]["fid"] == before["gan-mnist"]["fid"]  # not measured: kept
    assert after["gan-mnist"]["sample_seconds_per_64"] == -1.0  # its own group: kept
    assert after["dcgan-mnist"] == before["dcgan-mnist"]  # not named: untouched
    metrics.main(["gan-mnist", "--only", "sampling"])
    again = {r["model"]: r for r in metrics.recorded()}["gan-mnist"]
    assert 0 < again["sample_seconds_per_64"] < 1  # an MLP's single pass, timed
    assert again["cpu_seconds_per_iteration"] == after["gan-mnist"]["cpu_seconds_per_iteration"]
    untimed = {r["model"]: r for r in metrics.recorded()}
    cost_keys = [k for k in untimed["dcgan-fashion"]
                 if k.startswith(("cost_", "cpu_")) or k == "sample_seconds_per_64"]
    for key in cost_keys:  # a new model of a network timed before
        del untimed["dcgan-fashion"][key]
    record.write_text(json.dumps(list(untimed.values())))
    metrics.main(["gan-mnist", "--only", "sampling"])
    filled = {r["model"]: r for r in metrics.recorded()}
    assert cost_keys and all(filled["dcgan-fashion"][k] == before["dcgan-mnist"][k]
                             for k in cost_keys if k != "cpu_training_s")
    metrics.main(["dcgan-fashion", "--only", "cost", "--steps", "3"])
    timed = {r["model"]: r for r in metrics.recorded()}
    assert timed["dcgan-fashion"]["cost_steps"] == 3
    for key in ("cpu_seconds_per_iteration", "cost_steps"):  # the same network: one timing
        assert timed["dcgan-mnist"][key] == timed["dcgan-fashion"][key], key
    assert timed["dcgan-mnist"]["fid"] == before["dcgan-mnist"]["fid"]
    metrics.main(["diffusion-fashion", "--only", "cost", "--steps", "2"])  # and its guide
    guided = {r["model"]: r for r in metrics.recorded()}
    for name in ("diffusion-fashion", "diffusion-mnist"):  # one network, one guide network
        r = guided[name]
        assert r["cost_steps"] == 2 and r["guide_cpu_seconds_per_iteration"] > 0, name
        assert r["cpu_training_s"] == pytest.approx(
            r["cpu_seconds_per_iteration"] * r["iterations"]
            + r["guide_cpu_seconds_per_iteration"] * r["guide_iterations"]), name
    assert (guided["diffusion-mnist"]["guide_cpu_seconds_per_iteration"]
            == guided["diffusion-fashion"]["guide_cpu_seconds_per_iteration"])
    with pytest.raises(SystemExit):
        metrics.main(["gan-mnist", "--only", "coverage"])  # not a group
