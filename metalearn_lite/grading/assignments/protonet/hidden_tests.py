"""Hidden tests and reference code for the prototypical-networks homework (instructor side)."""
import torch
import torch.nn.functional as F

from metalearn_lite.grading.questions import _proto_args


def compute_prototypes(support_emb, support_y, num_ways):
    return torch.stack([support_emb[support_y == k].mean(0) for k in range(num_ways)])


def squared_euclidean_logits(query_emb, prototypes):
    return -((query_emb[:, None, :] - prototypes[None, :, :]) ** 2).sum(-1)


def episode_loss_and_accuracy(query_emb, query_y, prototypes):
    logits = squared_euclidean_logits(query_emb, prototypes)
    loss = F.cross_entropy(logits, query_y)
    accuracy = (logits.argmax(-1) == query_y).double().mean()
    return loss, accuracy


REFERENCE = {"2.1": compute_prototypes, "2.2": squared_euclidean_logits,
             "2.3": episode_loss_and_accuracy}
_WHICH = {"2.1": "prototypes", "2.2": "logits", "2.3": "loss"}


def hidden_cases(qid):
    """``[(name, args)]``: shuffled support labels and other shapes than the visible ones."""
    settings = [(201, 5, 1, 3, 8), (202, 4, 3, 2, 2), (203, 2, 5, 4, 3), (204, 6, 2, 3, 4)]
    return [(f"hidden {i}", _proto_args(seed, ways, shots, queries, dim, True, _WHICH[qid]))
            for i, (seed, ways, shots, queries, dim) in enumerate(settings)]
