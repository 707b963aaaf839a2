"""Prototypical networks against brute-force loops."""
import pytest
import torch
import torch.nn.functional as F

from metalearn_lite import Episode, EpisodeError
from metalearn_lite.algorithms import ProtoNet, cosine_logits, protonet_episode, prototypes, squared_euclidean_logits
from metalearn_lite.models import Conv4


def test_prototypes_and_logits_match_brute_force():
    torch.manual_seed(0)
    n, k, m, d = 4, 3, 7, 5
    z = torch.randn(n * k, d, dtype=torch.float64)
    y = torch.arange(n).repeat(k)[torch.randperm(n * k)]
    q = torch.randn(m, d, dtype=torch.float64)
    protos = prototypes(z, y, n)
    for c in range(n):
        members = [z[i] for i in range(n * k) if y[i] == c]
        assert torch.allclose(protos[c], sum(members) / len(members))
    logits = squared_euclidean_logits(q, protos)
    for i in range(m):
        for c in range(n):
            assert abs(float(logits[i, c]) + sum(float(q[i, j] - protos[c, j]) ** 2 for j in range(d))) < 1e-10
    cos = cosine_logits(q, protos, scale=3.0)
    assert abs(float(cos[2, 1]) - 3.0 * float(F.cosine_similarity(q[2], protos[1], dim=0))) < 1e-12


def test_batched_equals_per_task():
    torch.manual_seed(1)
    b, n, k, q = 3, 5, 2, 3
    sx, qx = torch.randn(b, n * k, 8), torch.randn(b, n * q, 8)
    sy = torch.arange(n).repeat_interleave(k).expand(b, -1).clone()
    qy = torch.arange(n).repeat_interleave(q).expand(b, -1).clone()
    ep = Episode(sx, sy, qx, qy, num_ways=n, num_shots=k, num_queries=q, batched=True)
    embed = torch.nn.Linear(8, 4)
    res = protonet_episode(embed, ep)
    losses = [protonet_episode(embed, task).loss for task in ep]
    assert torch.allclose(res.loss, torch.stack(losses).mean(), atol=1e-6)
    assert res.accuracy.shape == (b,)


def test_errors():
    with pytest.raises(EpisodeError, match="at least one support example"):
        prototypes(torch.randn(4, 3), torch.tensor([0, 0, 1, 1]), 3)
    with pytest.raises(EpisodeError, match=r"labels must be in 0..1"):
        prototypes(torch.randn(4, 3), torch.tensor([0, 0, 1, 2]), 2)
    with pytest.raises(EpisodeError, match="need the same D"):
        squared_euclidean_logits(torch.randn(3, 4), torch.randn(2, 5))
    with pytest.raises(ValueError, match="distance must be"):
        ProtoNet(torch.nn.Identity(), distance="manhattan")


def test_protonet_learns_separable_episodes():
    """Noisy copies of 20 random images: raw-pixel prototypes solve it; training Conv-4 halves the loss."""
    torch.manual_seed(0)
    net = ProtoNet(Conv4(num_classes=None, hidden=16))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    centers = torch.rand(20, 1, 28, 28)

    def episode():
        cls = torch.randperm(20)[:5]
        x = centers[cls].repeat_interleave(4, 0) + 0.3 * torch.randn(20, 1, 28, 28)
        y = torch.arange(5).repeat_interleave(4)
        sel = torch.arange(20).view(5, 4)
        s, q = sel[:, :1].flatten(), sel[:, 1:].flatten()
        return Episode(x[s], y[s], x[q], y[q], num_ways=5, num_shots=1, num_queries=3)

    assert float(ProtoNet(torch.nn.Flatten())(episode()).accuracy) == 1.0
    with torch.no_grad():
        first = sum(float(net(episode()).loss) for _ in range(10)) / 10
    for _ in range(80):
        loss = net(episode()).loss
        opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad():
        last = sum(float(net(episode()).loss) for _ in range(10)) / 10
    assert last < 0.6 * first, (first, last)
