"""What every course widget shares: a plot drawn into an ``ipywidgets.Image``, and a
static figure for front ends without widgets.

Why an ``Image`` widget and not an ``Output`` widget: prints inside ``Output`` widgets are
not routed by nbval's kernel client (cells fail with "Unexpected output fields"), and a
PNG value is easy for a browser test to watch change.

Static fallback: ``CourseWidget._repr_mimebundle_`` adds an ``image/png`` of the current
state next to the widget view. JupyterLab shows the live widget; a notebook rendered to
HTML (nbconvert, Jupyter Book) without widget state shows the picture.
"""
from __future__ import annotations

import base64
import html
import io
import threading

import ipywidgets as widgets
import matplotlib

matplotlib.use(matplotlib.get_backend())  # keep the notebook's backend; never force one here
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["CourseWidget", "figure_to_png"]

# matplotlib is not thread-safe (mathtext keeps one global parser with per-parse state), and a
# widget's callbacks need not come from the notebook's thread: one redraw at a time. (The mathtext
# parse failures seen in CI happened on the main thread, not concurrently; see OuterLoopPlayer.)
_DRAW_LOCK = threading.RLock()


def figure_to_png(fig: Figure, dpi: int = 90) -> bytes:
    """PNG bytes of a figure (closed afterwards so nothing leaks into the notebook)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


class CourseWidget(widgets.VBox):
    """A ``VBox`` of controls plus a plot, with a static PNG fallback.

    Subclasses implement ``draw(self) -> Figure`` (a new figure for the current state)
    and call ``self.refresh()`` whenever a control changes. ``self.plot`` is the
    ``ipywidgets.Image`` that shows the latest figure; ``self.last_state`` can hold the
    numbers behind it (tests and notebooks assert on it).
    """

    def __init__(self, controls: list[widgets.Widget], **kwargs):
        self.plot = widgets.Image(format="png", layout=widgets.Layout(max_width="900px"))
        # Empty unless a redraw failed: an error in a control's callback otherwise shows only in
        # JupyterLab's log console, and the student sees a plot that silently stopped changing.
        self.status = widgets.HTML("")
        self.last_state: dict = {}
        super().__init__(children=[*controls, self.plot, self.status], **kwargs)

    def draw(self) -> Figure:  # pragma: no cover - abstract
        raise NotImplementedError

    def refresh(self, *_) -> None:
        """Redraw the plot for the current control values.

        If drawing fails, the widget says so under the plot (and the error is raised, so a
        notebook cell or a test calling this still fails); the next good redraw clears it.
        """
        try:
            with _DRAW_LOCK:
                png = figure_to_png(self.draw())
        except Exception as error:
            where = threading.current_thread().name  # for a bug report: which thread redrew
            self.status.value = ("<span style='color:#b00020'>The plot could not be redrawn: "
                                 f"{html.escape(type(error).__name__)}: {html.escape(str(error))[:500]} "
                                 f"(in thread {html.escape(where)})</span>")
            raise
        self.plot.value = png
        if self.status.value:
            self.status.value = ""

    def static_figure(self) -> Figure:
        """A figure of the current state (what a static rendering shows)."""
        return self.draw()

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        if isinstance(bundle, tuple):
            bundle = bundle[0]
        bundle = dict(bundle)
        png = self.plot.value if self.plot.value else figure_to_png(self.static_figure())
        bundle["image/png"] = base64.b64encode(png).decode("ascii")
        return bundle
