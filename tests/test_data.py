"""The loader reads the real files, counts right, and fails clearly on bad input."""

import gzip
import hashlib
import shutil
import struct
import urllib.error

import pytest
import torch

from gentut import data, device

# SHA-256 of the decompressed files (../shared/datasets/README.md)
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def test_mnist_counts_and_label_histogram(mnist, mnist_test):
    assert mnist.images.shape == (60000, 1, 28, 28) and mnist.images.dtype == torch.uint8
    assert mnist.labels.dtype == torch.int64
    counts = torch.bincount(mnist.labels, minlength=10)
    assert counts[0] == 5923 and counts[1] == 6742 and counts.sum() == 60000
    assert mnist_test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(mnist_test.labels).tolist()[:2] == [980, 1135]
    assert mnist.classes == [str(d) for d in range(10)]


def test_fashion_is_balanced_with_named_classes(fashion):
    assert fashion.images.shape == (60000, 1, 28, 28)
    assert torch.bincount(fashion.labels).tolist() == [6000] * 10
    assert fashion.classes[0] == "T-shirt/top" and fashion.classes[9] == "Ankle boot"
    test = data.load("fashion", "test")
    assert torch.bincount(test.labels).tolist() == [1000] * 10


def test_files_read_are_the_documented_ones(raw_mnist):
    for stem, digest in SHA256.items():
        with gzip.open(raw_mnist / f"{stem}.gz") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest


def copy_mnist(src, root, gunzip=False):
    """The MNIST raw files under root/MNIST/raw, gzipped or not."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in src.iterdir():
        if gunzip:
            with gzip.open(f) as i, open(raw / f.name.removesuffix(".gz"), "wb") as o:
                shutil.copyfileobj(i, o)
        else:
            shutil.copy(f, raw / f.name)
    return raw


def test_root_argument_wins_and_plain_idx_reads_like_gzip(raw_mnist, tmp_path, mnist_test):
    copy_mnist(raw_mnist, tmp_path, gunzip=True)
    plain = data.load("mnist", "test", root=tmp_path)
    assert torch.equal(plain.images, mnist_test.images)
    assert torch.equal(plain.labels, mnist_test.labels)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown data set 'cifar'.*'fashion', 'mnist'"):
        data.load("cifar")
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        data.load("mnist", "valid")


@pytest.mark.parametrize("damage", ["truncated_gzip", "not_gzip", "short_idx"])
def test_damaged_file_is_named_with_what_to_do(raw_mnist, tmp_path, damage):
    raw = copy_mnist(raw_mnist, tmp_path)
    victim = raw / "t10k-images-idx3-ubyte.gz"
    blob = victim.read_bytes()
    if damage == "truncated_gzip":
        victim.write_bytes(blob[: len(blob) // 2])
    elif damage == "not_gzip":
        victim.write_bytes(b"<html>404</html>" * 10)
    else:
        with gzip.open(victim) as f:
            inner = f.read()
        victim.write_bytes(gzip.compress(inner[:-784]))  # one image short
    with pytest.raises(data.DataError, match=r"t10k-images-idx3-ubyte\.gz.*delete it") as err:
        data.load("mnist", "test", root=tmp_path)
    assert "\n" not in str(err.value)


def test_wrong_image_shape_is_refused(raw_mnist, tmp_path):
    raw = copy_mnist(raw_mnist, tmp_path)
    header = struct.pack(">IIII", 0x0803, 10000, 14, 56)  # right count, wrong shape
    with gzip.open(raw / "t10k-images-idx3-ubyte.gz") as f:
        body = f.read()[16:]
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + body))
    with pytest.raises(data.DataError, match=r"14x56.*28x28"):
        data.load("mnist", "test", root=tmp_path)


def test_offline_without_files_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("GENTUT_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def offline(name):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(data.DataError) as err:
        data.load("mnist", root=tmp_path / "given")
    message = str(err.value)
    for where in ("given", "env", "cache"):
        assert str(tmp_path / where) in message
    assert "GENTUT_DATA" in message and "\n" not in message


def test_batches_cover_each_epoch_once_in_a_new_order(mnist):
    b = data.Batches(mnist, 100, value_range=(-1.0, 1.0), device="cpu", limit=1000)
    assert len(b) == 10
    first = torch.cat([y for _, y in b])
    assert b.position == 10
    second = torch.cat([b.next()[1] for _ in range(10)])
    assert b.epoch == 1
    expected = torch.bincount(mnist.labels[:1000], minlength=10)
    assert torch.equal(torch.bincount(first, minlength=10), expected)
    assert torch.equal(torch.bincount(second, minlength=10), expected)
    assert not torch.equal(first, second)  # reshuffled
    x, _ = b.next()
    assert x.shape == (100, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1


def test_batches_are_seeded_and_resume_mid_epoch(mnist):
    a = data.Batches(mnist, 50, device="cpu", seed=3, limit=500)
    seq = [a.next()[1] for _ in range(25)]
    b = data.Batches(mnist, 50, device="cpu", seed=3, limit=500)
    for _ in range(13):
        b.next()
    c = data.Batches(mnist, 50, device="cpu", seed=3, limit=500)
    c.load_state_dict(b.state_dict())
    assert all(torch.equal(c.next()[1], y) for y in seq[13:])
    other = data.Batches(mnist, 50, device="cpu", seed=4, limit=500)
    assert not torch.equal(other.next()[1], seq[0])


def test_batch_larger_than_data_is_refused(mnist):
    with pytest.raises(ValueError, match="batch_size 100 exceeds the 50 images"):
        data.Batches(mnist, 100, device="cpu", limit=50)


def test_every_for_loop_pass_is_a_full_reshuffled_epoch(mnist):
    b = data.Batches(mnist, 100, device="cpu", limit=1000)
    passes = [torch.cat([y for _, y in b]) for _ in range(3)]
    expected = torch.bincount(mnist.labels[:1000], minlength=10)
    for labels in passes:
        assert len(labels) == 1000
        assert torch.equal(torch.bincount(labels, minlength=10), expected)
    assert not torch.equal(passes[0], passes[1]) and not torch.equal(passes[1], passes[2])
    assert b.epoch == 2


def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv("GENTUT_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device() == torch.device("cuda")
    assert device("cpu") == torch.device("cpu")


def test_gentut_device_pins_what_auto_means(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("GENTUT_DEVICE", "cpu")
    assert device() == torch.device("cpu")
    assert device("cuda") == torch.device("cuda")  # an explicit choice still wins
    monkeypatch.setenv("GENTUT_DEVICE", "")
    assert device() == torch.device("cuda")


def test_search_order_is_root_env_cache_then_debian(tmp_path, monkeypatch):
    monkeypatch.setenv("GENTUT_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.search_path("fashion", tmp_path / "root") == [
        tmp_path / "root" / "FashionMNIST" / "raw",
        tmp_path / "env" / "FashionMNIST" / "raw",
        tmp_path / "cache" / "gentut" / "FashionMNIST" / "raw",
        data.DEBIAN_FASHION,
    ]
    assert data.search_path("mnist")[-1] == tmp_path / "cache" / "gentut" / "MNIST" / "raw"


def test_fast_bf16_falls_back_without_the_private_onednn_query(monkeypatch):
    import types

    from gentut.hardware import fast_bf16

    monkeypatch.setattr(torch.ops, "mkldnn", types.SimpleNamespace())
    assert fast_bf16(torch.device("cpu")) is False
