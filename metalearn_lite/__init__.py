"""metalearn-lite: a hands-on course on meta-learning.

"Everything is a mapping": a learner maps a data set to a predictor; a meta-learner
maps a distribution of tasks to a learner.

Packages (one direction of dependence, top uses bottom):

- ``metalearn_lite.cli``, ``metalearn_lite.widgets``, ``metalearn_lite.grading``
- ``metalearn_lite.training``: meta-training loop, checkpoints, evaluation with CIs
- ``metalearn_lite.algorithms``: MAML, prototypical networks, neural processes
- ``metalearn_lite.models``: functional MLP and Conv-4
- ``metalearn_lite.tasks`` / ``metalearn_lite.data``: episodes, synthetic tasks, image data
"""
from .tasks.episode import Episode, EpisodeError

__version__ = "0.1.0"
__all__ = ["Episode", "EpisodeError", "__version__"]
