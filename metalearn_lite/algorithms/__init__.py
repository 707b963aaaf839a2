"""The meta-learning algorithms: MAML (chapter 02), prototypical networks (03), neural processes (04)."""
from .baselines import fine_tune, pretraining_loss
from .maml import MAML, InnerLoopResult, MetaLossResult, accuracy, choose_strategy, functional_inner_loop, inner_loop, meta_loss
from .neural_process import CNP, LatentNP, NPLoss, NPPrediction, gaussian_log_likelihood
from .protonet import ProtoNet, ProtoNetResult, cosine_logits, protonet_episode, prototypes, squared_euclidean_logits

__all__ = [
    "fine_tune", "pretraining_loss",
    "MAML", "InnerLoopResult", "MetaLossResult", "inner_loop", "functional_inner_loop", "meta_loss",
    "choose_strategy", "accuracy",
    "ProtoNet", "ProtoNetResult", "prototypes", "squared_euclidean_logits", "cosine_logits", "protonet_episode",
    "CNP", "LatentNP", "NPPrediction", "NPLoss", "gaussian_log_likelihood",
]
