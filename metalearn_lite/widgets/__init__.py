"""Interactive widgets for the chapters (ipywidgets 8).

Each widget drives the package's algorithms (it never re-implements them) and shows a
static PNG where no widget front end is attached (see ``base.CourseWidget``).
Submodules: ``welcome`` (support-size demo), ``maml`` (inner-loop explorer, outer-loop player), ``protonet`` (prototype
explorer), ``neural_process`` (context explorer), ``education`` (adaptive practice).
"""
from .base import CourseWidget, figure_to_png

__all__ = ["CourseWidget", "figure_to_png"]
