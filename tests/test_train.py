"""The shared loop: real training moves each model as it should, resumes exactly, loses nothing."""

import pytest
import torch

from gentut import data, hardware, models, train
from gentut.bench import compare


def batches_for(model, dataset, batch_size=None, limit=None, seed=0, device="cpu"):
    return data.Batches(dataset, batch_size or model.batch_size, value_range=model.value_range,
                        device=device, seed=seed, limit=limit)


def early_late(history, name, k=10):
    column = torch.tensor(history.losses[name])
    return column[:k].mean().item(), column[-k:].mean().item()


@pytest.mark.parametrize("family,term,names", [
    (models.Autoencoder, "recon", {"recon"}),
    (models.VAE, "loss", {"loss", "recon", "kl"}),
])
def test_autoencoder_and_vae_losses_fall(mnist, family, term, names):
    torch.manual_seed(0)
    model = family()
    h = train.fit(model, batches_for(model, mnist), 100, progress=False)
    early, late = early_late(h, term)
    assert late < 0.6 * early, (family.__name__, early, late)
    assert set(h.losses) == names and h.steps == 100


@pytest.mark.parametrize("family,batch", [(models.GAN, 100), (models.DCGAN, 64)])
def test_gan_discriminators_learn_to_separate(mnist, family, batch):
    torch.manual_seed(0)
    model = family()
    h = train.fit(model, batches_for(model, mnist, batch), 100, progress=False)
    _, loss_d = early_late(h, "loss_D")
    _, d_real = early_late(h, "D(x)")
    _, d_fake = early_late(h, "D(G(z))")
    assert loss_d < 2 * 0.6931 - 0.3  # below log 4, the loss of a guessing D
    assert d_real - d_fake > 0.3
    assert set(h.losses) == {"loss_D", "loss_G", "D(x)", "D(G(z))"}


def test_infogan_q_learns_to_read_the_categorical_code(mnist):
    torch.manual_seed(0)
    model = models.InfoGAN()
    h = train.fit(model, batches_for(model, mnist, 32), 100, progress=False)
    early, late = early_late(h, "loss_cat")
    assert early > 2.0 and late < 1.0  # from log 10 = 2.30 towards 0


def test_history_records_snapshots_of_a_fixed_batch(mnist):
    torch.manual_seed(0)
    model = models.GAN()
    h = train.fit(model, batches_for(model, mnist, limit=1000), 30, snapshots=(1, 10, 30),
                  snapshot_size=16, progress=False)
    assert sorted(h.snapshots) == [1, 10, 30]
    first, last = h.snapshots[1], h.snapshots[30]
    assert first.shape == (16, 1, 28, 28) and first.dtype == torch.uint8
    assert not torch.equal(first, last)  # G moved; same noise, different images
    expected = (model.sample(16, seed=0) * 255).round().to(torch.uint8)
    assert torch.equal(last, expected)
    assert h.info["device"] == "cpu" and h.info["steps_per_epoch"] == 10
    assert h.info["machine"] == hardware.machine("cpu")  # "AMD EPYC, 2 cores, 2 threads, ..."
    assert "threads" in h.info["machine"] and "torch" in h.info["machine"]
    assert h.info["wall_time_s"] > 0 and h.info["seconds_per_epoch"] > 0


@pytest.mark.parametrize("family", [models.GAN, models.VAE, models.DCGAN])
def test_resume_is_bit_exact(mnist, tmp_path, family):
    """50 steps, a checkpoint, a fresh process state, 50 more == 100 uninterrupted steps."""
    ckpt = tmp_path / "run.pt"

    def run(steps, resume, init_seed=0):
        torch.manual_seed(init_seed)
        model = family()
        batches = batches_for(model, mnist, batch_size=32, limit=7 * 32)  # 7 batches an epoch
        h = train.fit(model, batches, steps, checkpoint=ckpt if resume is not None else None,
                      every=20, resume=bool(resume), snapshots=(1, 60), progress=False)
        return model, h

    run(50, resume=False)
    torch.manual_seed(123)
    torch.rand(1000)  # disturb the global RNG: resuming must restore it
    resumed, h_resumed = run(100, resume=True, init_seed=99)
    straight, h_straight = run(100, resume=None)
    for (k, a), b in zip(resumed.state_dict().items(), straight.state_dict().values(),
                         strict=True):
        assert torch.equal(a, b), k
    assert h_resumed.losses == h_straight.losses
    assert all(torch.equal(h_resumed.snapshots[k], h_straight.snapshots[k]) for k in (1, 60))


@pytest.mark.parametrize("device", [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA GPU")),
])
def test_resume_on_the_training_device(mnist, tmp_path, device):
    """A run resumes on the device it trains on (a CUDA run once failed to restore its RNG)."""
    ckpt = tmp_path / "run.pt"
    for steps in (10, 20):
        torch.manual_seed(0)
        model = models.DCGAN()
        batches = batches_for(model, mnist, batch_size=32, limit=7 * 32, device=device)
        h = train.fit(model, batches, steps, checkpoint=ckpt, every=5, resume=True,
                      snapshots=(1, 20), bf16=False, progress=False)
    assert h.steps == 20 and h.info["device"] == device
    assert model.device.type == device
    assert all(s.device.type == "cpu" for s in h.snapshots.values())


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    train.save_atomic({"step": torch.tensor(1)}, path)

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        train.save_atomic({"step": torch.tensor(2)}, path)
    assert train.load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary file left


def test_corrupt_checkpoint_gets_a_clear_error(tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=r"ckpt\.pt is unreadable.*delete it"):
        train.load_checkpoint(path)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(mnist, tmp_path):
    ckpt = tmp_path / "run.pt"
    torch.manual_seed(0)
    model = models.GAN()
    batches = batches_for(model, mnist, limit=500)
    train.fit(model, batches, 40, checkpoint=ckpt, every=20, progress=False)
    batches.images[:] = float("nan")  # the data go bad after step 40
    with pytest.raises(train.NonFiniteLossError,
                       match=r"step 41: loss_D is nan.*last good checkpoint.*kept"):
        train.fit(model, batches, 100, checkpoint=ckpt, every=20, resume=True, progress=False)
    state = train.load_checkpoint(ckpt)
    assert len(state["history"]["losses"]["loss_D"]) == 40
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_non_finite_loss_at_step_1_does_not_claim_a_checkpoint(mnist, tmp_path):
    model = models.GAN()
    batches = batches_for(model, mnist, limit=500)
    batches.images[:] = float("nan")
    with pytest.raises(train.NonFiniteLossError, match=r"step 1: .*no checkpoint had been "
                                                       r"written yet") as err:
        train.fit(model, batches, 10, checkpoint=tmp_path / "run.pt", progress=False)
    assert "kept" not in str(err.value) and not (tmp_path / "run.pt").exists()


def test_images_of_the_wrong_shape_get_a_one_line_error_naming_the_expected_shape():
    model = models.GAN()
    wrong = data.Dataset(torch.zeros(200, 3, 32, 32, dtype=torch.uint8),
                         torch.zeros(200, dtype=torch.long), [str(i) for i in range(10)])
    batches = data.Batches(wrong, 100, value_range=model.value_range, device="cpu")
    with pytest.raises(ValueError, match=r"GAN takes images of shape \(1, 28, 28\).*got "
                                         r"\(3, 32, 32\)") as err:
        train.fit(model, batches, 1, progress=False)
    assert "\n" not in str(err.value)


def test_bench_reference_loop_runs_against_the_real_dataset_class(mnist):
    row = compare("gan", torch.device("cpu"), rounds=1, steps=3)
    assert row["gentut_steps_per_s"] > 0 and row["reference_steps_per_s"] > 0


def test_bf16_autocast_trains_with_finite_losses(mnist):
    torch.manual_seed(0)
    model = models.DCGAN()
    h = train.fit(model, batches_for(model, mnist, 32, limit=320), 5, bf16=True, progress=False)
    assert h.info["bf16"] is True and h.steps == 5
    assert all(torch.isfinite(torch.tensor(v)).all() for v in h.losses.values())
