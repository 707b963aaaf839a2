"""The N-way K-shot Q-query episode sampler: every image in these tests carries its own
identity (class, index) in its pixels, so the tests read back exactly what was sampled."""
from __future__ import annotations

import pytest
import torch

from metalearn_lite import Episode
from metalearn_lite.data import EpisodeSampler


def id_data(num_classes: int, per_class: int) -> torch.Tensor:
    """Dense data ``[C, M, 1, 2, 2]`` whose image (c, i) is filled with ``1000 * c + i``."""
    ids = torch.arange(num_classes)[:, None] * 1000 + torch.arange(per_class)[None, :]
    return ids.float()[:, :, None, None, None].expand(num_classes, per_class, 1, 2, 2).clone()


def ids_of(x: torch.Tensor) -> list[tuple[int, int]]:
    """(class, index) of each image ``[n, 1, 2, 2]``."""
    values = x.reshape(x.shape[0], -1)[:, 0].long().tolist()
    return [(v // 1000, v % 1000) for v in values]


def check_episode(ep: Episode, n: int, k: int, q: int) -> list[int]:
    """Assert the sampler's contract on one episode; return the original class of each label."""
    assert (ep.num_ways, ep.num_shots, ep.num_queries, ep.batched) == (n, k, q, False)
    assert ep.support_x.shape[0] == n * k and ep.query_x.shape[0] == n * q
    assert ep.support_y.dtype == torch.long and ep.query_y.dtype == torch.long
    # grouped by class: label 0's K shots first, then label 1's, ...
    assert ep.support_y.tolist() == [j for j in range(n) for _ in range(k)]
    assert ep.query_y.tolist() == [j for j in range(n) for _ in range(q)]
    support, query = ids_of(ep.support_x), ids_of(ep.query_x)
    assert len(set(support)) == n * k and len(set(query)) == n * q  # no repeats inside a set
    assert not set(support) & set(query)  # support and query disjoint
    label_class = {}
    for (cls, _), y in zip(support + query, ep.support_y.tolist() + ep.query_y.tolist()):
        assert label_class.setdefault(y, cls) == cls  # one original class per label
    classes = [label_class[j] for j in range(n)]
    assert len(set(classes)) == n  # classes without replacement
    return classes


@pytest.mark.parametrize("n,k,q", [(5, 1, 15), (3, 5, 2), (20, 1, 1)])
def test_dense_episodes_keep_the_contract(n, k, q):
    sampler = EpisodeSampler(id_data(25, 20), num_ways=n, num_shots=k, num_queries=q, seed=0)
    orders = []
    for _ in range(20):
        classes = check_episode(sampler.sample(), n, k, q)
        orders.append(classes)
    assert any(c != sorted(c) for c in orders)  # labels follow a random class order
    assert len({tuple(c) for c in orders}) > 1


def test_all_classes_once_when_num_ways_equals_num_classes():
    sampler = EpisodeSampler(id_data(6, 4), num_ways=6, num_shots=2, num_queries=2, seed=1)
    for _ in range(5):
        assert sorted(check_episode(sampler.sample(), 6, 2, 2)) == list(range(6))
        # every one of the 4 examples of a class is used exactly once
        ep = sampler.sample()
        assert sorted(ids_of(torch.cat([ep.support_x, ep.query_x]))) == [(c, i) for c in range(6) for i in range(4)]


def test_classes_and_examples_are_drawn_uniformly():
    sampler = EpisodeSampler(id_data(10, 6), num_ways=5, num_shots=1, num_queries=1, seed=0)
    class_counts = torch.zeros(10)
    index_counts = torch.zeros(6)
    for _ in range(2000):
        ep = sampler.sample()
        for cls, i in ids_of(ep.support_x):
            class_counts[cls] += 1
            index_counts[i] += 1
    # expected 1000 per class and ~1667 per index; a biased sampler lands far outside
    assert class_counts.min() > 850 and class_counts.max() < 1150
    assert index_counts.min() > 1450 and index_counts.max() < 1900


def test_deterministic_per_seed_and_different_across_seeds():
    data = id_data(30, 20)
    a = [EpisodeSampler(data, 5, 1, 15, seed=7).sample() for _ in range(1)]
    s1, s2, s3 = (EpisodeSampler(data, 5, 1, 15, seed=s) for s in (7, 7, 8))
    eps1 = [s1.sample() for _ in range(5)]
    eps2 = [s2.sample() for _ in range(5)]
    eps3 = [s3.sample() for _ in range(5)]
    assert torch.equal(a[0].support_x, eps1[0].support_x)
    for e1, e2 in zip(eps1, eps2):
        assert torch.equal(e1.support_x, e2.support_x) and torch.equal(e1.query_x, e2.query_x)
    assert any(not torch.equal(e1.query_x, e3.query_x) for e1, e3 in zip(eps1, eps3))
    assert not torch.equal(eps1[0].query_x, eps1[1].query_x)  # the stream moves on
    s1.reset()
    assert torch.equal(s1.sample().query_x, eps1[0].query_x)


def test_sample_batch_shapes_and_equals_stacked_singles():
    data = id_data(30, 20)
    batched = EpisodeSampler(data, 5, 2, 3, seed=4).sample_batch(8)
    assert batched.batched and batched.num_tasks == 8
    assert batched.support_x.shape == (8, 10, 1, 2, 2) and batched.support_y.shape == (8, 10)
    assert batched.query_x.shape == (8, 15, 1, 2, 2) and batched.query_y.shape == (8, 15)
    singles = EpisodeSampler(data, 5, 2, 3, seed=4)
    stacked = Episode.stack([singles.sample() for _ in range(8)])
    for name in ("support_x", "support_y", "query_x", "query_y"):
        assert torch.equal(getattr(batched, name), getattr(stacked, name))
    for task in batched:
        check_episode(task, 5, 2, 3)
    assert len({tuple(ids_of(t.support_x)) for t in batched}) == 8  # tasks differ
    meta = list(EpisodeSampler(data, 5, 2, 3, seed=4).episodes(3, num_tasks=2))
    assert len(meta) == 3 and all(m.support_x.shape[0] == 2 for m in meta)


class TargetsDataset(torch.utils.data.Dataset):
    """A generic map-style data set: item i is (tensor filled with i, label); uneven classes."""

    def __init__(self, targets: list[int]):
        self.targets = targets

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return torch.full((1, 3, 3), float(i)), self.targets[i]


def test_generic_dataset_with_targets():
    labels = [10] * 5 + [20] * 9 + [30] * 4 + [40] * 7
    ds = TargetsDataset([labels[i] for i in torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))])
    sampler = EpisodeSampler(ds, num_ways=3, num_shots=2, num_queries=2, seed=0)
    assert sampler.num_classes == 4
    seen_classes = set()
    for _ in range(30):
        ep = sampler.sample()
        assert ep.support_x.shape == (6, 1, 3, 3) and ep.query_x.shape == (6, 1, 3, 3)
        s_idx = ep.support_x[:, 0, 0, 0].long().tolist()
        q_idx = ep.query_x[:, 0, 0, 0].long().tolist()
        assert not set(s_idx) & set(q_idx) and len(set(s_idx + q_idx)) == 12
        label_of = {}
        for i, y in zip(s_idx + q_idx, ep.support_y.tolist() + ep.query_y.tolist()):
            assert label_of.setdefault(y, ds.targets[i]) == ds.targets[i]
        assert len(set(label_of.values())) == 3
        seen_classes |= set(label_of.values())
    assert seen_classes == {10, 20, 30, 40}
    batch = EpisodeSampler(ds, 3, 2, 2, seed=0).sample_batch(4)
    assert batch.support_x.shape == (4, 6, 1, 3, 3)


def test_object_with_class_images():
    class Holder:
        def class_images(self):
            return id_data(7, 5)

    ep = EpisodeSampler(Holder(), 4, 1, 3, seed=0).sample()
    check_episode(ep, 4, 1, 3)


def test_error_messages_name_what_is_missing():
    with pytest.raises(ValueError, match=r"5-way episode needs at least 5 classes, but the data has 3"):
        EpisodeSampler(id_data(3, 20), 5, 1, 1)
    with pytest.raises(ValueError, match=r"needs num_shots \+ num_queries = 16 .* every class has 10"):
        EpisodeSampler(id_data(10, 10), 5, 1, 15)
    ds = TargetsDataset([0] * 6 + [1] * 2 + [2] * 6)
    with pytest.raises(ValueError, match=r"= 4 examples per class: class 1 has 2"):
        EpisodeSampler(ds, 2, 2, 2)
    with pytest.raises(ValueError, match="a 3-way episode needs at least 3 classes, but the data has 2"):
        EpisodeSampler(TargetsDataset([0] * 4 + [1] * 4), 3, 1, 1)
    with pytest.raises(ValueError, match="num_shots must be a positive int, got 0"):
        EpisodeSampler(id_data(10, 10), 5, 0, 1)
    with pytest.raises(TypeError, match="got list"):
        EpisodeSampler([1, 2, 3], 2, 1, 1)
    with pytest.raises(ValueError, match=r"num_tasks must be a positive int, got 0"):
        EpisodeSampler(id_data(10, 10), 5, 1, 1).sample_batch(0)


def test_torch_indexing_path_matches_numpy_path():
    """CPU data is gathered through numpy; other devices through torch indexing: same episodes."""
    data = id_data(12, 8)
    fast = EpisodeSampler(data, 4, 2, 3, seed=5)
    plain = EpisodeSampler(data, 4, 2, 3, seed=5)
    plain._dense_np = None  # what a CUDA tensor would use
    for a, b in ((fast.sample(), plain.sample()), (fast.sample_batch(3), plain.sample_batch(3))):
        for name in ("support_x", "support_y", "query_x", "query_y"):
            assert torch.equal(getattr(a, name), getattr(b, name))


def test_data_package_exports_glyphs_lazily(monkeypatch):
    import sys
    import types

    import metalearn_lite.data as data

    fake = types.ModuleType("metalearn_lite.data.glyphs")
    fake.Glyphs, fake.generate_glyphs, fake.plot_contact_sheet = object(), object(), object()
    monkeypatch.setitem(sys.modules, "metalearn_lite.data.glyphs", fake)
    assert data.Glyphs is fake.Glyphs and data.plot_contact_sheet is fake.plot_contact_sheet
    assert data.EpisodeSampler is EpisodeSampler and "Omniglot" in dir(data)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        data.Nope
