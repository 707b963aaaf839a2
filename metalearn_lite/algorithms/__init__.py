"""The meta-learning algorithms: MAML (chapter 02), prototypical networks (03), neural processes (04);
Reptile, matching and relation networks, attentive neural processes (chapter 07);
in-context learning with a transformer (chapter 09); transfer baselines and
self-distillation (chapter 07), adversarial (PGD) few-shot attacks and training and VAE task
augmentation (chapter 08)."""
from .baselines import fine_tune, pretraining_loss
from .metrics import accuracy
from .inner_lr import InnerLR
from .maml import MAML, InnerLoopResult, MetaLossResult, choose_strategy, functional_inner_loop, inner_loop, meta_loss
from .neural_process import CNP, LatentNP, NPLoss, NPPrediction, gaussian_log_likelihood
from .protonet import ProtoNet, ProtoNetResult, cosine_logits, protonet_episode, prototypes, squared_euclidean_logits
from .attentive_np import AttentiveNP
from .in_context import InContextClassifier, InContextRegressor
from .matching import (MatchingNet, MatchingNetResult, RelationNet, RelationNetResult, class_representations,
                       cosine_attention, matching_episode, matching_log_probabilities, relation_episode,
                       relation_scores)
from .reptile import Reptile, ReptileResult, reptile_adapt, reptile_meta_gradient, reptile_step, task_data
from .transfer import (ClassifierResult, TransferResult, distillation_loss, episode_features, fit_linear_head,
                       pretrain_classifier_loss, prototype_classifier, sample_class_batch)
from .adversarial import adversarial_protonet_loss, attack_maml_queries, attack_protonet_queries, pgd_attack
from .augmentation import ConvVAE, VAELossResult, VAEOutput, augment_support, gaussian_kl, vae_loss

__all__ = [
    "fine_tune", "pretraining_loss",
    "MAML", "InnerLoopResult", "MetaLossResult", "inner_loop", "functional_inner_loop", "meta_loss",
    "choose_strategy", "accuracy", "InnerLR",
    "ProtoNet", "ProtoNetResult", "prototypes", "squared_euclidean_logits", "cosine_logits", "protonet_episode",
    "CNP", "LatentNP", "NPPrediction", "NPLoss", "gaussian_log_likelihood",
    "AttentiveNP",
    "InContextRegressor", "InContextClassifier",
    "MatchingNet", "MatchingNetResult", "cosine_attention", "matching_log_probabilities", "matching_episode",
    "RelationNet", "RelationNetResult", "class_representations", "relation_scores", "relation_episode",
    "Reptile", "ReptileResult", "reptile_adapt", "reptile_meta_gradient", "reptile_step", "task_data",
    "sample_class_batch", "ClassifierResult", "pretrain_classifier_loss", "episode_features", "TransferResult",
    "prototype_classifier", "fit_linear_head", "distillation_loss",
    "pgd_attack", "attack_protonet_queries", "attack_maml_queries", "adversarial_protonet_loss",
    "ConvVAE", "VAEOutput", "VAELossResult", "gaussian_kl", "vae_loss", "augment_support",
]
