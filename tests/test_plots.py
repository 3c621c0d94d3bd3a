"""Figures draw from a real history and carry their labels."""

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from gentut import data, models, plots, train  # noqa: E402


def test_history_and_snapshots_draw_labelled_figures(mnist):
    torch.manual_seed(0)
    model = models.GAN()
    batches = data.Batches(mnist, 100, value_range=model.value_range, device="cpu", limit=500)
    h = train.fit(model, batches, 20, snapshots=(1, 20), progress=False)
    fig = plots.history(h, window=5)
    loss_ax, score_ax = fig.axes
    assert loss_ax.get_xlabel() == "iteration" and score_ax.get_ylabel() == "mean probability"
    assert loss_ax.get_title() == "GAN losses" and score_ax.get_ylim() == (0, 1)
    assert {t.get_text() for t in loss_ax.get_legend().get_texts()} == {"loss_D", "loss_G"}
    assert len(loss_ax.lines[0].get_xdata()) == 16  # 20 steps, running mean of 5
    fig = plots.snapshots(h)
    assert [ax.get_title() for ax in fig.axes] == ["iteration 1", "iteration 20"]


def test_smooth_is_a_running_mean():
    assert plots.smooth([1.0, 2.0, 3.0, 4.0], 2).tolist() == [1.5, 2.5, 3.5]
    assert plots.smooth([1.0, 2.0], 5).tolist() == [1.0, 2.0]


def test_grid_draws_uint8_and_float_alike():
    images = torch.rand(10, 1, 28, 28)
    a = plots.grid(images, nrow=5).images[0].get_array()
    b = plots.grid((images * 255).round().to(torch.uint8), nrow=5).images[0].get_array()
    assert a.shape == (2 * 30 + 2, 5 * 30 + 2)
    assert abs(a - b).max() < 1 / 255


def test_rows_label_columns_and_confusion_writes_counts():
    fig = plots.rows({"a": torch.rand(3, 1, 28, 28), "b": torch.rand(3, 1, 28, 28)},
                     columns=["-1", "0", "1"])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["-1", "0", "1"]
    assert fig.axes[1].get_ylabel() == "b"
    ax = plots.confusion(torch.tensor([[3, 1], [0, 4]]), ["c=0", "c=1"], ["x", "y"],
                         "label", "code", title="t")
    assert sorted(t.get_text() for t in ax.texts) == ["1", "3", "4"]  # zero counts left blank
    assert ax.images[0].get_array()[0, 0] == 0.75  # row shares


def test_every_shipped_term_has_a_named_panel_and_big_and_small_terms_do_not_share_one():
    from gentut import pretrained

    for name in pretrained.available():
        terms = list(pretrained.history(name).losses)
        panels = plots.panels_of(terms)
        assert sorted(t for _, _, group in panels for t in group) == sorted(terms), name
        assert all(title != term for title, _, (term, *_) in panels), (name, panels)
    titles = {title: group for title, _, group in plots.panels_of(["loss", "recon", "kl"])}
    assert titles["KL term"] == ["kl"]  # the KL (~7 nats) is not drawn on the loss's axes
    assert plots.panels_of(["new_term"]) == [("new_term", "new_term", ["new_term"])]
