"""Matching and relation networks: the equations against brute force, the symmetries, and learning.

- matching: attention rows are probability vectors equal to softmax(s * cos) written out; the
  class probabilities are exactly attention @ onehot(support labels) (a convex combination of
  the support one-hots); logits are their logs; the loss is -mean log p(y | x);
- relation: scores lie in [0, 1] and equal sigmoid(g([f(x), sum_k f(x_k)])) written out; the
  loss is the MSE to one-hot;
- both: relabelling the classes permutes the outputs the same way (equivariance), and shuffling
  the support set changes nothing;
- both: a short training run on Gaussian-blob episodes, whose class information hides in 4 of
  16 dimensions, goes from (near) chance to far above it on held-out episodes.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from metalearn_lite import Episode, EpisodeError
from metalearn_lite.algorithms import (MatchingNet, RelationNet, class_representations, cosine_attention,
                                       matching_episode, relation_episode)
from metalearn_lite.models import MLP, Conv4
from metalearn_lite.tasks import SinusoidTasks


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _random_episode(num_tasks=2, num_ways=4, num_shots=3, num_queries=2, dim=6, seed=0) -> Episode:
    gen = torch.Generator().manual_seed(seed)
    sx = torch.randn(num_tasks, num_ways * num_shots, dim, generator=gen, dtype=torch.float64)
    qx = torch.randn(num_tasks, num_ways * num_queries, dim, generator=gen, dtype=torch.float64)
    sy = torch.stack([torch.arange(num_ways).repeat(num_shots)[torch.randperm(num_ways * num_shots, generator=gen)]
                      for _ in range(num_tasks)])
    qy = torch.arange(num_ways).repeat_interleave(num_queries).expand(num_tasks, -1).clone()
    return Episode(sx, sy, qx, qy, num_ways=num_ways, num_shots=num_shots, num_queries=num_queries, batched=True)


def _relabel(episode: Episode, perm: torch.Tensor) -> Episode:
    """Class n becomes class perm[n]."""
    return Episode(episode.support_x, perm[episode.support_y], episode.query_x, perm[episode.query_y],
                   num_ways=episode.num_ways, num_shots=episode.num_shots, num_queries=episode.num_queries,
                   batched=episode.batched)


def _shuffle_support(episode: Episode, seed: int) -> Episode:
    order = torch.randperm(episode.support_y.shape[-1], generator=torch.Generator().manual_seed(seed))
    return Episode(episode.support_x[:, order], episode.support_y[:, order], episode.query_x, episode.query_y,
                   num_ways=episode.num_ways, num_shots=episode.num_shots, num_queries=episode.num_queries,
                   batched=True)


def test_matching_attention_is_a_distribution_and_predictions_a_convex_combination_of_one_hots():
    torch.manual_seed(0)
    episode = _random_episode()
    embed = torch.nn.Linear(6, 5).double()
    result = matching_episode(embed, episode, scale=3.0)
    a = result.attention
    assert a.shape == (2, 8, 12)
    assert torch.all(a >= 0) and torch.allclose(a.sum(-1), torch.ones(2, 8, dtype=torch.float64), atol=1e-12)
    # softmax_i(s * cos(f(x), f(x_i))), written out for one task and one query.
    fq, fs = embed(episode.query_x[1, 3]), embed(episode.support_x[1])
    cos = torch.stack([F.cosine_similarity(fq, fs[i], dim=0) for i in range(12)])
    assert torch.allclose(a[1, 3], torch.softmax(3.0 * cos, 0), atol=1e-12)
    assert float((a.max() - a.min()).detach()) > 0.05  # not uniform: the check above has teeth

    one_hot = F.one_hot(episode.support_y, 4).double()    # [B, n_s, N]
    assert torch.allclose(result.probabilities, a @ one_hot, atol=1e-12)
    assert torch.allclose(result.probabilities.sum(-1), torch.ones(2, 8, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(result.logits.exp(), result.probabilities, atol=1e-12)
    nll = -torch.log(torch.gather(a @ one_hot, -1, episode.query_y.unsqueeze(-1))).mean()
    assert torch.allclose(result.loss, nll, atol=1e-12)
    assert result.accuracy.shape == (2,)
    # The single-task episode gives the same numbers as task 1 of the batch.
    single = matching_episode(embed, episode[1], scale=3.0)
    assert torch.allclose(single.logits, result.logits[1], atol=1e-12)


def test_relation_scores_are_in_unit_interval_and_match_the_formula():
    torch.manual_seed(1)
    episode = _random_episode(seed=1)
    net = RelationNet(torch.nn.Linear(6, 5).double(), embedding_dim=5, hidden=16).double()
    result = net(episode)
    r = result.scores
    assert r.shape == (2, 8, 4)
    assert torch.all((r >= 0) & (r <= 1))
    # sigmoid(g([f(x), c_n])) with c_n the *sum* of class n's support embeddings, written out.
    fq = net.encoder(episode.query_x[0, 5])
    members = [net.encoder(episode.support_x[0, i]) for i in range(12) if int(episode.support_y[0, i]) == 2]
    assert len(members) == 3
    expected = torch.sigmoid(net.relation(torch.cat([fq, sum(members)])))
    assert torch.allclose(r[0, 5, 2], expected.squeeze(), atol=1e-12)
    assert torch.allclose(result.loss, ((r - F.one_hot(episode.query_y, 4).double()) ** 2).mean(), atol=1e-12)
    # Mean aggregation is the prototype: the sum divided by K.
    z = net.encoder(episode.support_x)
    assert torch.allclose(class_representations(z, episode.support_y, 4, "mean") * 3,
                          class_representations(z, episode.support_y, 4, "sum"), atol=1e-12)
    # A saturating relation module still gives scores in [0, 1] (not outside, not NaN).
    huge = relation_episode(net.encoder, lambda pairs: 1e4 * pairs.sum(-1, keepdim=True), episode)
    assert torch.all((huge.scores >= 0) & (huge.scores <= 1))


def test_conv4_embedding_on_an_unbatched_image_episode():
    torch.manual_seed(2)
    x = torch.rand(5 * 2 + 5 * 1, 1, 28, 28)
    y = torch.arange(5).repeat_interleave(3)
    support, query = torch.arange(15).view(5, 3)[:, :2].flatten(), torch.arange(15).view(5, 3)[:, 2]
    episode = Episode(x[support], y[support], x[query], y[query], num_ways=5, num_shots=2, num_queries=1)
    m = MatchingNet(Conv4(num_classes=None, hidden=8))(episode)
    r = RelationNet(Conv4(num_classes=None, hidden=8), embedding_dim=8)(episode)
    assert m.logits.shape == (5, 5) and m.attention.shape == (5, 10) and m.accuracy.shape == ()
    assert r.scores.shape == (5, 5) and r.class_representations.shape == (5, 8) and r.accuracy.shape == ()
    assert torch.isfinite(m.loss) and torch.isfinite(r.loss)


@pytest.mark.parametrize("kind", ["matching", "relation"])
def test_relabelling_classes_permutes_outputs_and_support_order_does_not_matter(kind):
    torch.manual_seed(3)
    episode = _random_episode(seed=3)
    encoder = MLP(6, (8,), 5).double()
    net = (MatchingNet(encoder, scale=5.0) if kind == "matching" else RelationNet(encoder, 5, hidden=8)).double()

    def outputs(ep):
        res = net(ep)
        return res.logits if kind == "matching" else res.scores

    base = outputs(episode)
    perm = torch.tensor([2, 0, 3, 1])                        # no class keeps its label
    relabelled = net(_relabel(episode, perm))
    moved = (relabelled.logits if kind == "matching" else relabelled.scores)
    # Class n's column moved to column perm[n].
    assert torch.allclose(moved[..., perm], base, atol=1e-12)
    assert not torch.allclose(moved, base, atol=1e-3)        # the columns do differ, so this is a real check
    assert torch.allclose(relabelled.loss, net(episode).loss, atol=1e-12)
    assert torch.equal(relabelled.accuracy, net(episode).accuracy)
    assert torch.allclose(outputs(_shuffle_support(episode, 4)), base, atol=1e-12)


def _blob_episode(gen: torch.Generator, num_tasks=4, num_ways=5, num_shots=2, num_queries=3,
                  informative=4, nuisance=12) -> Episode:
    """New random class centres in the first `informative` dims each task; large noise in the rest,
    so raw cosine similarity is near chance and the embedding must learn to ignore the noise."""
    centres = 3.0 * torch.randn(num_tasks, num_ways, informative, generator=gen)

    def draw(per_class):
        y = torch.arange(num_ways).repeat_interleave(per_class)
        signal = centres[:, y] + 0.5 * torch.randn(num_tasks, len(y), informative, generator=gen)
        noise = 3.0 * torch.randn(num_tasks, len(y), nuisance, generator=gen)
        return torch.cat([signal, noise], -1), y.expand(num_tasks, -1).clone()

    sx, sy = draw(num_shots)
    qx, qy = draw(num_queries)
    return Episode(sx, sy, qx, qy, num_ways=num_ways, num_shots=num_shots, num_queries=num_queries, batched=True)


@pytest.mark.parametrize("kind, steps, floor", [("matching", 100, 0.85), ("relation", 200, 0.7)])
def test_short_training_on_gaussian_blobs_beats_chance(kind, steps, floor):
    torch.manual_seed(0)
    encoder = MLP(16, (32,), 16)
    net = MatchingNet(encoder) if kind == "matching" else RelationNet(encoder, embedding_dim=16, hidden=32)
    held_out = _blob_episode(torch.Generator().manual_seed(99), num_tasks=100)
    with torch.no_grad():
        before = float(net(held_out).accuracy.mean())
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        loss = net(_blob_episode(gen)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(net(held_out).accuracy.mean())
    assert before < 0.5, before                               # chance is 0.2: the task is not solved at init
    assert after > floor and after > before + 0.3, (before, after)


def test_errors():
    regression = SinusoidTasks().sample(2, 3, 3, generator=0)
    with pytest.raises(EpisodeError, match="classification episode"):
        matching_episode(torch.nn.Identity(), regression)
    episode = _random_episode()
    with pytest.raises(EpisodeError, match=r"must output \[n, 4\] \(embedding_dim\), got \[40, 5\]"):
        RelationNet(torch.nn.Linear(6, 5).double(), embedding_dim=4)(episode)
    with pytest.raises(EpisodeError, match="need the same D"):
        cosine_attention(torch.randn(3, 4), torch.randn(5, 6))
    with pytest.raises(EpisodeError, match="at least one support example"):
        class_representations(torch.randn(4, 3), torch.tensor([0, 0, 1, 1]), 3)
    with pytest.raises(ValueError, match="aggregate must be 'sum' or 'mean'"):
        RelationNet(torch.nn.Identity(), embedding_dim=3, aggregate="max")
    with pytest.raises(EpisodeError, match=r"map \[\.\.\., 2D\] to \[\.\.\., 1\]"):
        relation_episode(torch.nn.Identity(), torch.nn.Identity(), episode)
