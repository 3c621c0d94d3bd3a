"""The cost timer measures real training steps: positive times that grow with the steps."""

import math
import time

import pytest
import torch

from gentut import cost, pretrained


def test_seconds_per_iteration_are_positive_and_total_time_scales_with_steps():
    few = cost.seconds_per_iteration("gan-mnist", steps=8, warmup=2)
    many = cost.seconds_per_iteration("gan-mnist", steps=64, warmup=2)
    assert few["steps"] == 8 and many["steps"] == 64
    assert 0 < few["seconds_per_iteration"] < 60 and 0 < many["seconds_per_iteration"] < 60
    assert many["seconds"] > few["seconds"]  # 8x the steps: wide slack for a shared machine
    assert math.isclose(many["seconds_per_iteration"] * 64, many["seconds"])
    assert few["batch_size"] == 100 and few["bf16"] is False  # the MLP GAN's recipe


def test_a_network_trained_on_two_data_sets_is_timed_once():
    assert cost.group("dcgan-fashion") == cost.group("dcgan-mnist") == "dcgan-mnist"
    assert cost.group("vae20-mnist") == "vae20-mnist" != cost.group("vae-mnist")
    groups = {cost.group(n) for n in pretrained.RECIPES}
    assert all(pretrained.recipe_of(g).family is pretrained.recipe_of(n).family
               for n in pretrained.RECIPES for g in [cost.group(n)])
    assert len(groups) < len(pretrained.RECIPES)


def test_seconds_is_a_median_and_stops_once_slow_calls_add_up():
    calls = []

    def nap(seconds):
        calls.append(seconds)
        time.sleep(seconds)

    assert cost.seconds(lambda: nap(0.01), torch.device("cpu"), repeats=3) == pytest.approx(
        0.01, abs=0.01)
    assert len(calls) == 3
    calls.clear()
    cost.seconds(lambda: nap(0.3), torch.device("cpu"), at_least=0.5, repeats=5)
    assert len(calls) == 2  # 0.6 s after two calls: enough


def test_sampling_seconds_times_a_draw_of_64():
    gan = pretrained.load("gan-mnist")
    assert 0 < cost.sampling_seconds(gan) < 1  # an MLP's single pass
