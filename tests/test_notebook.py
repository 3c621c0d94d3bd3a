"""Chapter plumbing: train-or-load takes keywords, trains the steps it reports, loads what ships."""

import pytest

from gentut import notebook, pretrained


def test_train_or_load_takes_its_options_by_keyword_only():
    with pytest.raises(TypeError):
        notebook.train_or_load("gan-mnist", True)  # positional booleans read wrongly


def test_train_or_load_loads_the_shipped_model_and_refuses_another_data_set():
    model, history = notebook.train_or_load("gan-mnist", train=False)
    assert history.steps == pretrained.history("gan-mnist").steps and not model.training
    with pytest.raises(ValueError, match="TRAIN = True"):
        notebook.train_or_load("gan-mnist", dataset="fashion")


def test_a_smoke_run_trains_the_steps_its_summary_reports(capsys):
    model, history = notebook.train_or_load("gan-mnist", train=True, smoke=True, device="cpu")
    assert history.steps == notebook.SMOKE_STEPS
    assert history.info["steps_per_epoch"] == notebook.SMOKE_IMAGES // model.batch_size
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"trained gan-mnist here: {notebook.SMOKE_STEPS} iterations of 100")


def test_datasets_of_expands_both_and_names_the_choices():
    assert notebook.datasets_of("both") == ["mnist", "fashion"]
    assert notebook.datasets_of("fashion") == ["fashion"]
    with pytest.raises(ValueError, match="'mnist', 'fashion' or 'both'"):
        notebook.datasets_of("cifar")
