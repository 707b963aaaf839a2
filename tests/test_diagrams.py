"""Chapter 02's MAML computation graph: drawn, with both backward paths labelled in the course's symbols."""
from __future__ import annotations

import matplotlib.pyplot as plt

from metalearn_lite.course.diagrams import maml_computation_graph


def test_maml_graph_shows_the_identity_and_the_hessian_path():
    fig = maml_computation_graph()
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for needed in (r"\theta", r"\phi_i", "inner_lr", "outer_lr", "support set", "query set",
                   "identity path", "Hessian path", r"I - \alpha", "create_graph=True", "first_order=True"):
        assert needed in texts, f"the graph does not mention {needed!r}"
    fig.canvas.draw()                                  # mathtext parses (a bad formula raises here)
    assert len(fig.axes[0].patches) >= 14              # boxes and arrows
    plt.close(fig)
