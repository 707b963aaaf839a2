"""PrototypeExplorer (chapter 03), without a browser: controls change the episode, the
numbers behind the plot and the PNG; the model's predictions are the package's."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from metalearn_lite.algorithms import ProtoNet, protonet_episode
from metalearn_lite.models import Conv4
from metalearn_lite.widgets.protonet import PrototypeExplorer, pca_2d

NUM_CLASSES, PER_CLASS = 12, 12


def class_data(noise: float = 0.05, seed: int = 0) -> torch.Tensor:
    """``[12, 12, 1, 6, 6]``: class c lights pixel c (of 36) plus small noise."""
    g = torch.Generator().manual_seed(seed)
    x = noise * torch.rand(NUM_CLASSES, PER_CLASS, 1, 6, 6, generator=g)
    for c in range(NUM_CLASSES):
        x[c, :, 0, c // 6, c % 6] += 1.0
    return x


@pytest.fixture
def perfect_explorer() -> PrototypeExplorer:
    """Flatten is an embedding that separates the classes perfectly."""
    return PrototypeExplorer(ProtoNet(nn.Flatten()), class_data(), num_ways=5, num_shots=1, num_queries=3,
                             grid_size=40)


def test_widget_reports_the_models_own_predictions(perfect_explorer):
    w = perfect_explorer
    state = w.last_state
    assert (state["num_ways"], state["num_shots"], state["num_queries"]) == (5, 1, 3)
    assert state["accuracy"] == 1.0
    assert state["predictions"] == state["query_y"]
    assert len(state["prototypes_2d"]) == 5 and len(state["support_2d"]) == 5 and len(state["query_2d"]) == 15
    assert w.plot.value[:8] == b"\x89PNG\r\n\x1a\n"


def test_untrained_conv4_predictions_match_protonet_episode():
    torch.manual_seed(0)
    net = ProtoNet(Conv4(num_classes=None, hidden=8))
    data = torch.rand(NUM_CLASSES, PER_CLASS, 1, 28, 28)
    w = PrototypeExplorer(net, data, num_ways=4, num_shots=2, num_queries=3, grid_size=30)
    with torch.no_grad():
        expected = protonet_episode(net.embed, w.episode())
    assert w.last_state["predictions"] == expected.logits.argmax(-1).tolist()
    assert w.last_state["accuracy"] == pytest.approx(float(expected.accuracy))
    assert 0.0 <= w.last_state["projection_agreement"] <= 1.0
    assert 0.0 < w.last_state["explained_variance"] <= 1.0 + 1e-9
    assert net.training  # the widget restores the module's mode


def test_sliders_change_ways_shots_and_the_picture(perfect_explorer):
    w = perfect_explorer
    png = w.plot.value
    w.ways.value = 7
    assert w.last_state["num_ways"] == 7 and len(w.last_state["prototypes_2d"]) == 7
    assert len(w.last_state["query_2d"]) == 7 * 3
    assert w.plot.value != png
    png = w.plot.value
    w.shots.value = 4
    assert w.last_state["num_shots"] == 4 and len(w.last_state["support_2d"]) == 7 * 4
    assert w.plot.value != png


def test_resample_draws_a_new_episode(perfect_explorer):
    w = perfect_explorer
    before = dict(w.last_state)
    w.resample.click()
    assert w.last_state["episode_seed"] == before["episode_seed"] + 1
    assert w.last_state["query_2d"] != before["query_2d"]
    # the same seed gives the same episode back (deterministic re-draw)
    w.episode_seed -= 1
    w.refresh()
    assert w.last_state["query_2d"] == before["query_2d"]


def test_prototypes_project_to_the_mean_of_their_projected_support(perfect_explorer):
    w = perfect_explorer
    w.shots.value = 3
    s = np.array(w.last_state["support_2d"]).reshape(w.last_state["num_ways"], 3, 2)
    np.testing.assert_allclose(np.array(w.last_state["prototypes_2d"]), s.mean(1), atol=1e-9)


def test_regions_checkbox_changes_plot_not_numbers(perfect_explorer):
    w = perfect_explorer
    png, numbers = w.plot.value, w.last_state["query_2d"]
    w.regions.value = False
    assert w.plot.value != png and w.last_state["query_2d"] == numbers and not w.last_state["regions"]


def test_pca_2d_finds_the_dominant_plane():
    g = torch.Generator().manual_seed(1)
    z = torch.zeros(200, 5)
    z[:, 1] = 10 * torch.randn(200, generator=g)
    z[:, 3] = 3 * torch.randn(200, generator=g)
    z += 0.01 * torch.randn(200, 5, generator=g)
    mean, components, explained = pca_2d(z)
    assert components.shape == (5, 2)
    assert abs(float(components[1, 0])) > 0.999 and abs(float(components[3, 1])) > 0.999
    assert explained > 0.999
    with pytest.raises(ValueError, match=r"\[n >= 2, D\]"):
        pca_2d(torch.zeros(5))


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="ProtoNet"):
        PrototypeExplorer(nn.Flatten(), class_data())
    with pytest.raises(ValueError, match="num_ways must be <="):
        PrototypeExplorer(ProtoNet(nn.Flatten()), class_data(), num_ways=11, max_ways=10)
    with pytest.raises(ValueError, match="needs at least 20 classes"):
        PrototypeExplorer(ProtoNet(nn.Flatten()), class_data(), num_ways=20)
