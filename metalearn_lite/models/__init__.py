"""Models for the course, written to be used with ``torch.func.functional_call``."""
from .conv4 import BatchStatNorm2d, Conv4, conv_block
from .mlp import MLP

__all__ = ["MLP", "Conv4", "BatchStatNorm2d", "conv_block"]
