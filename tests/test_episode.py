"""The Episode type: validation messages name what was expected and what came."""
import pytest
import torch

from metalearn_lite import Episode, EpisodeError


def _cls(n=5, k=1, q=3, batched=False, b=2):
    lead = (b,) if batched else ()
    sy = torch.arange(n).repeat_interleave(k).expand(*lead, n * k).clone()
    qy = torch.arange(n).repeat_interleave(q).expand(*lead, n * q).clone()
    return Episode(torch.rand(*lead, n * k, 1, 28, 28), sy, torch.rand(*lead, n * q, 1, 28, 28), qy,
                   num_ways=n, num_shots=k, num_queries=q, batched=batched)


def test_valid_single_and_batched():
    ep = _cls()
    assert ep.num_tasks == 1 and ep.is_classification
    b = _cls(batched=True, b=4)
    assert b.num_tasks == 4 and len(list(b)) == 4
    assert b[1].support_x.shape == (5, 1, 28, 28) and not b[1].batched
    assert "num_ways=5" in repr(b)


def test_stack_round_trip():
    singles = [_cls() for _ in range(3)]
    b = Episode.stack(singles)
    assert b.batched and b.support_x.shape == (3, 5, 1, 28, 28)
    assert torch.equal(b[2].query_x, singles[2].query_x)


def test_stack_rejects_mismatch():
    with pytest.raises(EpisodeError, match="num_ways=3, expected 5"):
        Episode.stack([_cls(), _cls(n=3)])
    with pytest.raises(EpisodeError, match="empty"):
        Episode.stack([])


def test_errors_name_shapes():
    x = torch.rand(5, 1, 28, 28)
    with pytest.raises(EpisodeError, match=r"support_x \[5, 1, 28, 28\] and support_y \[4\]"):
        Episode(x, torch.zeros(4, dtype=torch.long), x, torch.zeros(5, dtype=torch.long))
    with pytest.raises(EpisodeError, match="same example shape"):
        Episode(x, torch.zeros(5), torch.rand(5, 1, 14, 14), torch.zeros(5))
    with pytest.raises(EpisodeError, match="must be a torch.Tensor, got list"):
        Episode([1, 2], torch.zeros(2), x, torch.zeros(5))


def test_label_checks():
    x = torch.rand(5, 1, 28, 28)
    with pytest.raises(EpisodeError, match=r"labels must be in 0..4 for a 5-way episode, got labels in 0..7"):
        Episode(x, torch.tensor([0, 1, 2, 3, 7]), x, torch.arange(5), num_ways=5)
    with pytest.raises(EpisodeError, match="integer class labels"):
        Episode(x, torch.arange(5).float(), x, torch.arange(5), num_ways=5)
    with pytest.raises(EpisodeError, match="needs num_ways\\*num_shots = 10"):
        Episode(x, torch.arange(5), x, torch.arange(5), num_ways=5, num_shots=2)
    with pytest.raises(EpisodeError, match="needs 15 query"):
        Episode(x, torch.arange(5), x, torch.arange(5), num_ways=5, num_queries=3)


def test_batched_needs_same_B():
    with pytest.raises(EpisodeError, match="same number of tasks B"):
        Episode(torch.rand(2, 5, 1), torch.rand(2, 5, 1), torch.rand(3, 5, 1), torch.rand(3, 5, 1), batched=True)
    with pytest.raises(EpisodeError, match="indexing needs a batched"):
        _cls()[0]
