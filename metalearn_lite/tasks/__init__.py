"""Tasks: the episode type and the synthetic task distributions (chapter 01)."""
from .episode import Episode, EpisodeError

__all__ = ["Episode", "EpisodeError"]
