# Wrong shapes, wrong dtypes, NaN and inf: nothing should pass.
import torch

def compute_prototypes(support_emb, support_y, num_ways):
    return torch.full((num_ways, support_emb.shape[1]), float("nan"), dtype=torch.float64)

def squared_euclidean_logits(query_emb, prototypes):
    good = -((query_emb[:, None] - prototypes[None]) ** 2).sum(-1)
    return good.T  # transposed: wrong shape unless square... and then wrong values
    
def episode_loss_and_accuracy(query_emb, query_y, prototypes):
    return torch.tensor(float("inf")), [torch.tensor(1)]
