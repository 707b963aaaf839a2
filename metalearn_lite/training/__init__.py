"""Meta-training loop, checkpoints and evaluation with confidence intervals."""
from .checkpoint import (CheckpointError, checkpoint_info, load_checkpoint, load_model, load_shipped, save_checkpoint,
                         shipped_checkpoint)
from .evaluation import EvalResult, evaluate, mean_confidence_interval
from .history import History
from .loop import meta_train

__all__ = ["meta_train", "History", "save_checkpoint", "load_checkpoint", "load_model", "load_shipped", "shipped_checkpoint", "checkpoint_info", "CheckpointError",
           "EvalResult", "evaluate", "mean_confidence_interval"]
