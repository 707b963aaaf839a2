"""Tasks: the episode type and the synthetic task distributions (chapter 01)."""
from .episode import Episode, EpisodeError
from .gp import GPCurves, GPPosterior, gp_log_likelihood, gp_posterior, rbf_kernel
from .sinusoid import SinusoidTasks, sinusoid

__all__ = ["Episode", "EpisodeError", "SinusoidTasks", "sinusoid", "GPCurves", "GPPosterior",
           "gp_posterior", "gp_log_likelihood", "rbf_kernel"]
