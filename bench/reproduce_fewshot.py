"""Reproduce the few-shot Omniglot table (ProtoNet, MAML, first-order MAML; Conv-4) in minutes.

Trains each method for a fixed *wall-clock budget* on the Glyphs background alphabets and
tests it on the Glyphs evaluation alphabets (never seen in training), printing 5-way 1-shot,
5-way 5-shot, 20-way 1-shot and 20-way 5-shot test accuracy with 95% confidence intervals
over ``--episodes`` test episodes (600 by default, the papers' protocol), the papers' numbers
on Omniglot beside them, and the training/test wall time of each method. When the full
Omniglot zips are available (``metalearn data omniglot --download``, or ``--omniglot-root``)
the same runs are repeated on real Omniglot (Vinyals split, rotations as new classes);
otherwise that part is skipped with a message.

The papers trained for hours on a GPU (ProtoNet: 60-way episodes until the validation loss
stalls; MAML: 60,000 meta-steps of 32 tasks). The default budgets here are 3 minutes per
method on a 2-core CPU (about 9 minutes of training and 10 of testing in all, estimated
from per-episode CPU costs measured on a shared machine), so the numbers are far below
the papers' budgets and are *not* a faithful reproduction: they show the ordering and the
size of the gaps on this data.

Choices, all printed in the header:

- ProtoNet trains one embedding (``--protonet-train``, 20-way 1-shot 5-query by default:
  Snell et al. found training with more ways than testing helps) and tests it in all four
  settings.
- MAML needs an N-way head, so it trains one model per number of ways in ``--maml-settings``
  (the budget split equally across them), each on 1-shot tasks, and tests each at 1 and 5
  shots. By default MAML runs only the 5-way settings: testing a 20-way MAML model costs
  ~1-2 CPU s per episode (3 inner steps on 100 support images), about 20 more minutes for
  600 episodes of each 20-way setting; add them with ``--maml-settings 5w1s,5w5s,20w1s,20w5s``.
  Inner loop: ``--inner-lr`` 0.4, 1 step in training, ``--test-inner-steps`` 3 at test
  (Finn et al. used 0.4, 1 step for 5-way and 5 for 20-way). Meta-batches are small
  (``--meta-batch`` 4; the paper used 32) because one Conv-4 task costs ~0.1 s here.
  With one inner step in training a second-order step cost about as much CPU time as a
  first-order one here (README "Results"), so the same budget gives both similar step counts.
- ``--class-loss W`` adds to ProtoNet's episode loss W times a softmax of every episode image over
  *all* training classes (a learned centre per class, squared Euclidean logits like the
  prototypes'; the same forward pass, so no extra embedding cost); only the embedding is saved.
- ``--max-steps N`` also stops training after N steps, e.g. to give two methods the same
  number of meta-steps on machines of different speed; the learning rate halves at 50% and
  again at 75% of whichever limit (budget or steps) is nearer.
- Batch norm uses batch statistics at test time too (Conv4's ``BatchStatNorm2d``), as in MAML.
- Test episodes come from a fixed seed per setting, so every method sees the same episodes.

Usage::

    METALEARN_LITE_CACHE=.cache python bench/reproduce_fewshot.py      # default: ~20 min on 2 idle cores (estimate)
    python bench/reproduce_fewshot.py --methods protonet --budget-minutes 1 --episodes 100
    # the shipped checkpoints (one run per method on an otherwise idle machine; README "Results"):
    python bench/reproduce_fewshot.py --methods protonet --data glyphs --settings 5w1s,5w5s,20w1s,20w5s \\
        --budget-minutes 12 --episodes 600 --threads 2 --save-checkpoints metalearn_lite/checkpoints
    python bench/reproduce_fewshot.py --methods fomaml --data glyphs --maml-settings 5w1s,5w5s \\
        --budget-minutes 16 --episodes 600 --threads 2 --save-checkpoints metalearn_lite/checkpoints
    python bench/reproduce_fewshot.py --methods maml --data glyphs --maml-settings 5w1s,5w5s \\
        --budget-minutes 22 --episodes 600 --threads 1 --save-checkpoints metalearn_lite/checkpoints
    # 20-way models (not shipped): second order for 22 minutes, first order for as many meta-steps
    python bench/reproduce_fewshot.py --methods maml --data glyphs --maml-settings 20w1s,20w5s \\
        --budget-minutes 22 --episodes 600 --threads 1
    python bench/reproduce_fewshot.py --methods fomaml --data glyphs --maml-settings 20w1s,20w5s \\
        --budget-minutes 60 --max-steps 498 --episodes 600 --threads 1

Real handwriting (the two small Omniglot background sets, from the loader: the cache,
``$METALEARN_LITE_OMNIGLOT``, ``--omniglot-root`` or ``../shared/data/omniglot``): ``--data
small1`` trains on ``images_background_small1`` and tests on the alphabets of
``images_background_small2`` that small1 lacks (they share Latin and Greek), ``glyphs+small1``
fine-tunes the shipped Glyphs models instead of starting from random weights; ``--rotations``,
``--affine`` and ``--within-alphabet`` augment, ``--init-from`` continues a run, ``--mix-glyphs P``
draws a fraction P of ProtoNet's episodes from Glyphs instead (in the ``--glyphs-pen`` /
``--glyphs-elastic`` style), so the model keeps seeing many scripts. ProtoNet is also
tested on Lake's 20-way within-alphabet task (``lake20``; bench/real_handwriting.py). The shipped
``protonet_glyphs_small1_conv4.pt`` is the shipped mapped-and-bent (thin-pen) Glyphs ProtoNet
fine-tuned so, a quarter of its episodes from thin-pen Glyphs (README "Real handwriting"; 19,364
episodes on one thread), then copied into the shipped folder and recorded with
``metalearn_lite.checkpoints.record_checkpoint``::

    python bench/reproduce_fewshot.py --data glyphs+small1 --methods protonet --settings 5w1s \\
        --budget-minutes 36 --episodes 100 --test-queries 5 --rotations 0,90,180,270 --affine \\
        --affine-degrees 15 --elastic 0.08 --within-alphabet 0.75 --protonet-lr 3e-4 --threads 1 \\
        --init-from metalearn_lite/checkpoints/protonet_glyphs_augmented_conv4.pt --mix-glyphs 0.25 \\
        --glyphs-pen 0.45,0.9 --glyphs-elastic 0.05,0.12 --save-checkpoints RUN

The real ProtoNets shipped before it erred 21.8% (the published-pen mapped-and-bent model
fine-tuned on small1 alone: ``git show b9edfba:bench/reproduce_fewshot.py``) and 27.0% on Lake's
task against 19.7% (three runs from the plain Glyphs ProtoNet, 1430 episodes; their commands are
in ``git show 19effdc:bench/reproduce_fewshot.py``).

Generator studies (``--data glyphs``; README "Real handwriting"): ``--glyphs-pen LOW,HIGH`` and
``--glyphs-elastic LOW,HIGH`` draw Glyphs with another pen radius or stroke jitter
(``glyph_render.GlyphStyle``; generated once, about two minutes on 2 cores, and cached as its own
file beside the published set), ``--glyphs-drawers N`` trains on the first N of each character's
20 drawers and ``--glyphs-alphabets N`` on N of the 22 background alphabets (a seeded choice).
The checkpoint's ``glyphs_generator`` records what was used; test with
``bench/real_handwriting.py --models extra --protonet RUN/protonet_glyphs_conv4.pt``.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from metalearn_lite.algorithms.maml import MAML, accuracy
from metalearn_lite.algorithms.protonet import ProtoNet, protonet_episode, squared_euclidean_logits
from metalearn_lite.data.episodes import EpisodeSampler
from metalearn_lite.data.glyphs import Glyphs
from metalearn_lite.data.omniglot import rotate_classes
from metalearn_lite.data.transforms import augment_episode
from metalearn_lite.models import Conv4
from metalearn_lite.reproducibility import seed_everything
from metalearn_lite.training import EvalResult, evaluate, save_checkpoint

METHODS = ("protonet", "maml", "fomaml")
METHOD_NAMES = {"protonet": "ProtoNet", "maml": "MAML (2nd order)", "fomaml": "MAML (1st order)"}
SETTINGS = ("5w1s", "5w5s", "20w1s", "20w5s")
# Omniglot test accuracy (%) in the papers: Snell et al. 2017 (Table 1), Finn et al. 2017 (Table 1).
PAPER = {
    "ProtoNet (Snell et al. 2017)": {"5w1s": 98.8, "5w5s": 99.7, "20w1s": 96.0, "20w5s": 98.9},
    "MAML (Finn et al. 2017)": {"5w1s": 98.7, "5w5s": 99.9, "20w1s": 95.8, "20w5s": 98.9},
}
PROTONET_CHECKPOINT = "protonet_glyphs_conv4.pt"
MAML_CHECKPOINTS = {"fomaml": "maml_glyphs_conv4_5w1s.pt", "maml": "maml2nd_glyphs_conv4_5w1s.pt"}
# --data choices on real handwriting: train on one small background set (from scratch, or
# fine-tuning the shipped Glyphs model: "glyphs+smallN"), test on the other's own alphabets.
REAL_DATA = ("small1", "small2", "glyphs+small1", "glyphs+small2")
DATA_CHOICES = ("glyphs", "omniglot", *REAL_DATA)
OMNIGLOT_LICENSE = "Omniglot (Lake et al. 2015), MIT licence, https://github.com/brendenlake/omniglot"


@dataclass
class DataSet:
    """One --data choice: training and test class images ``[C, M, 1, 28, 28]`` and what they are."""

    name: str
    train: torch.Tensor
    test: torch.Tensor
    key: str = "glyphs"                     # the --data token
    init: str | None = None                 # "shipped": start from the shipped Glyphs model
    train_alphabets: tuple[str, ...] = ()   # real alphabets seen in training
    test_alphabets: tuple[str, ...] = ()
    test_class_alphabet: list[str] = field(default_factory=list)
    train_class_alphabet: list[str] = field(default_factory=list)   # a rotated alphabet is its own
    glyphs: dict | None = None              # Glyphs: the generator style and any subset trained on
    mix: torch.Tensor | None = None         # --mix-glyphs: Glyphs class images some real episodes come from
    mix_glyphs: dict | None = None          # ... and their generator style


def real_checkpoint_name(method: str, key: str) -> str:
    """``protonet_glyphs_small1_conv4.pt``, ``maml_small2_conv4_5w1s.pt``, ... for a real --data choice."""
    tag = key.replace("+", "_")
    if method == "protonet":
        return f"protonet_{tag}_conv4.pt"
    return f"{'maml' if method == 'fomaml' else 'maml2nd'}_{tag}_conv4_5w1s.pt"


def parse_setting(text: str) -> tuple[int, int]:
    """``"5w1s"`` -> ``(5, 1)`` (num_ways, num_shots)."""
    try:
        ways, shots = text.lower().rstrip("s").split("w")
        return int(ways), int(shots)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a setting looks like '5w1s' (ways, shots), got {text!r}") from None


@dataclass
class MethodRun:
    """What one method produced: test results per setting and timings."""

    method: str
    results: dict[str, EvalResult] = field(default_factory=dict)
    train_wall_s: float = 0.0
    train_cpu_s: float = 0.0
    test_wall_s: float = 0.0
    steps: dict[str, int] = field(default_factory=dict)
    models: dict[int, torch.nn.Module] = field(default_factory=dict)   # ways -> model (MAML), 0 -> ProtoNet


def _timed_loop(step_fn, budget_s: float, description: str, max_steps: int | None = None) -> tuple[int, float, float]:
    """Call ``step_fn(step, progress)`` until ``budget_s`` wall seconds pass or ``max_steps`` steps
    are done; return (steps, wall s, cpu s). ``progress`` in [0, 1) is the fraction of whichever
    limit is nearer, so the learning-rate schedule ends with the run either way."""
    start, cpu_start = time.perf_counter(), time.process_time()
    step = 0
    bar = tqdm(total=round(budget_s), desc=description, unit="s", mininterval=10, leave=False)
    shown = 0
    while (elapsed := time.perf_counter() - start) < budget_s and (max_steps is None or step < max_steps):
        progress = elapsed / budget_s
        if max_steps is not None:
            progress = max(progress, step / max_steps)
        step_fn(step, progress)
        step += 1
        seconds = int(time.perf_counter() - start)
        if seconds > shown:
            bar.update(min(seconds, round(budget_s)) - shown)
            shown = min(seconds, round(budget_s))
    bar.close()
    return step, time.perf_counter() - start, time.process_time() - cpu_start


def _lr_factor(progress: float) -> float:
    """Step decay on the fraction of the budget spent: 1, then 0.5 after 50%, 0.25 after 75%."""
    return 1.0 if progress < 0.5 else (0.5 if progress < 0.75 else 0.25)


def _elastic(args) -> float:
    """``--elastic`` (0 for callers that build their own argument namespace without it)."""
    return getattr(args, "elastic", 0.0)


def _augmenter(args):
    """``episode -> episode`` with a fresh random affine map (``--affine``) and bend (``--elastic``)
    per image, else identity."""
    if not args.affine and not _elastic(args):
        return lambda episode: episode
    generator = torch.Generator().manual_seed(args.seed + 1)
    if not args.affine:  # elastic only: the affine map is the identity
        return lambda episode: augment_episode(episode, generator, elastic=_elastic(args), max_degrees=0.0,
                                               scale=(1.0, 1.0), max_shear=0.0, max_shift=0.0)
    return lambda episode: augment_episode(episode, generator, elastic=_elastic(args),
                                           max_degrees=args.affine_degrees)


def _class_centres(net: ProtoNet, train_data: torch.Tensor, drawers: int = 5) -> torch.nn.Parameter:
    """``--class-loss``: a learnable centre per training class, started at the mean embedding of
    its first ``drawers`` examples (so the class softmax starts in the embedding's own geometry)."""
    with torch.no_grad():
        x = train_data[:, :drawers]
        z = torch.cat([net.encoder(chunk) for chunk in x.flatten(0, 1).split(500)])
    return torch.nn.Parameter(z.reshape(x.shape[0], x.shape[1], -1).mean(1))


def _episode_classes(indices, episode) -> torch.Tensor:
    """The training-class index (row of the class-images tensor) of every image of an episode,
    support then query, from its sampler's ``indices`` (``classes[label]``)."""
    return indices.classes[torch.cat([episode.support_y, episode.query_y])]


def train_protonet(train_data: torch.Tensor, budget_s: float, args, log, init: str | None = None,
                   train_class_alphabet: list[str] | None = None,
                   mix: torch.Tensor | None = None) -> tuple[ProtoNet, int, float, float]:
    """``mix``: Glyphs class images; a ``--mix-glyphs`` fraction of the episodes is drawn from
    them instead of ``train_data`` (real fine-tuning that keeps seeing the generator's scripts)."""
    ways, shots = parse_setting(args.protonet_train)
    sampler = EpisodeSampler(train_data, ways, shots, args.protonet_queries, seed=args.seed)
    mix_fraction = getattr(args, "mix_glyphs", 0.0) if mix is not None else 0.0
    if mix_fraction > 0:
        glyph_sampler = EpisodeSampler(mix, ways, shots, args.protonet_queries, seed=args.seed + 9)
        mix_pick = torch.Generator().manual_seed(args.seed + 10)
    within = None
    if args.within_alphabet > 0 and train_class_alphabet:
        from metalearn_lite.data.within_alphabet import WithinAlphabetSampler
        # harder episodes, like the test: all classes of one alphabet (a rotated alphabet counts
        # as its own), support and query by different drawers
        within = WithinAlphabetSampler(train_data, train_class_alphabet, ways, shots, args.protonet_queries,
                                       seed=args.seed + 7)
        pick = torch.Generator().manual_seed(args.seed + 8)
    net = ProtoNet(Conv4(num_classes=None))
    if args.init_from is not None:
        here = str(Path(__file__).resolve().parent)
        if here not in sys.path:
            sys.path.insert(0, here)
        from real_handwriting import load_protonet_file  # bench/real_handwriting.py
        net = load_protonet_file(args.init_from)[0].train()
        log(f"  ProtoNet: continuing from {args.init_from}")
    elif init == "shipped":
        from metalearn_lite.training.pretrained import pretrained_protonet
        net = pretrained_protonet()[0].train()
        log("  ProtoNet: fine-tuning the shipped Glyphs ProtoNet")
    net.lean = True  # training only: the lean Conv-4 blocks (exact first-order, ~1.6-2x episodes/s)
    augment = _augmenter(args)
    centres = _class_centres(net, train_data) if args.class_loss > 0 else None
    optimiser = torch.optim.Adam([*net.parameters(), *([centres] if centres is not None else [])], lr=args.protonet_lr)
    losses: list[float] = []

    def step(i: int, progress: float) -> None:
        for group in optimiser.param_groups:
            group["lr"] = args.protonet_lr * _lr_factor(progress)
        use_within = within is not None and float(torch.rand(1, generator=pick)) < args.within_alphabet
        source = within if use_within else sampler
        if mix_fraction > 0 and float(torch.rand(1, generator=mix_pick)) < mix_fraction:
            source = glyph_sampler
        indices = source.sample_indices()
        episode = augment(source.episode(indices))
        # one pass of f_phi over the episode's images serves both losses
        z = net.embed(torch.cat([episode.support_x, episode.query_x]))
        result = protonet_episode(lambda _: z, episode, net.distance)
        loss = result.loss
        if centres is not None:
            # whole-class softmax: every image against all training classes' learned centres c_j,
            # logits -||f_phi(x) - c_j||^2 (the prototypes' geometry); y = the image's class index
            loss = loss + args.class_loss * F.cross_entropy(squared_euclidean_logits(z, centres),
                                                            _episode_classes(indices, episode))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(result.loss.detach()))
        if (i + 1) % args.log_every == 0:
            log(f"  protonet step {i + 1}: loss {sum(losses[-50:]) / len(losses[-50:]):.3f}")

    steps, wall, cpu = _timed_loop(step, budget_s, f"ProtoNet {args.protonet_train}", args.max_steps)
    log(f"  ProtoNet: {steps} episodes of {ways}-way {shots}-shot in {wall:.0f} s wall ({cpu:.0f} s CPU); "
        f"last-50 loss {sum(losses[-50:]) / max(1, len(losses[-50:])):.3f}")
    return net.eval(), steps, wall, cpu


def train_maml(train_data: torch.Tensor, ways: int, first_order: bool, budget_s: float, args, log,
               init: str | None = None):
    sampler = EpisodeSampler(train_data, ways, args.maml_train_shots, args.maml_queries, seed=args.seed + ways)
    model = Conv4(num_classes=ways)
    if init == "shipped":
        if ways != 5:
            raise SystemExit(f"--data glyphs+smallN fine-tunes the shipped 5-way MAML; got {ways}-way settings")
        from metalearn_lite.training.pretrained import pretrained_glyphs_maml
        model.load_state_dict(pretrained_glyphs_maml(first_order=first_order)[0].model.state_dict())
        log(f"  MAML: fine-tuning the shipped Glyphs {'first' if first_order else 'second'}-order MAML")
    maml = MAML(model, F.cross_entropy, inner_lr=args.inner_lr, num_inner_steps=args.train_inner_steps,
                first_order=first_order, metric_fn=accuracy)
    augment = _augmenter(args)
    optimiser = torch.optim.Adam(maml.parameters(), lr=args.maml_outer_lr)
    accs: list[float] = []
    name = "fomaml" if first_order else "maml"

    def step(i: int, progress: float) -> None:
        for group in optimiser.param_groups:
            group["lr"] = args.maml_outer_lr * _lr_factor(progress)
        batch = sampler.sample_batch(args.meta_batch)
        if args.affine or _elastic(args):
            from metalearn_lite.tasks.episode import Episode
            batch = Episode.stack([augment(task) for task in batch])
        optimiser.zero_grad(set_to_none=True)
        result = maml.meta_step(batch)   # the fast path: meta-gradient accumulated task by task (README "Speed")
        optimiser.step()
        accs.append(float(result.query_metric.mean()))
        if (i + 1) % max(1, args.log_every // 10) == 0:
            log(f"  {name} {ways}-way step {i + 1}: query acc (last 20) {sum(accs[-20:]) / len(accs[-20:]):.3f}")

    steps, wall, cpu = _timed_loop(step, budget_s, f"{METHOD_NAMES[name]} {ways}-way", args.max_steps)
    log(f"  {METHOD_NAMES[name]} {ways}-way: {steps} meta-steps x {args.meta_batch} tasks in {wall:.0f} s wall "
        f"({cpu:.0f} s CPU); last-20 training query acc {sum(accs[-20:]) / max(1, len(accs[-20:])):.3f}")
    return maml, steps, wall, cpu


def test_sampler(test_data: torch.Tensor, setting: str, args) -> EpisodeSampler:
    ways, shots = parse_setting(setting)
    # A fixed seed per setting: every method is tested on the same episodes.
    return EpisodeSampler(test_data, ways, shots, args.test_queries, seed=10_000 + SETTINGS.index(setting)
                          if setting in SETTINGS else 10_000)


def protonet_metric(net: ProtoNet):
    def metric(episode) -> float:
        with torch.no_grad():
            return float(net(episode).accuracy)
    return metric


def maml_metric(maml: MAML, num_inner_steps: int):
    def metric(episode) -> float:
        adapted = maml.adapt(episode.support_x, episode.support_y, num_inner_steps=num_inner_steps).params
        with torch.no_grad():
            return float(accuracy(maml(episode.query_x, adapted), episode.query_y))
    return metric


def run_method(method: str, train_data: torch.Tensor, test_data: torch.Tensor, settings: list[str], args,
               log, on_trained=None, data: DataSet | None = None) -> MethodRun:
    """Train ``method`` for the budget, call ``on_trained(run)`` (e.g. save a checkpoint), then test it.

    With real ``data`` (``--data small1`` etc.) ProtoNet is also tested on Lake's within-alphabet
    20-way one-shot protocol (``lake20``, bench/real_handwriting.py) and MAML on its 5-way form."""
    budget_s = args.budget_minutes * 60
    init = data.init if data is not None else None
    run = MethodRun(method)
    seed_everything(args.seed, num_threads=args.threads)
    if method == "protonet":
        net, steps, wall, cpu = train_protonet(train_data, budget_s, args, log, init=init,
                                               train_class_alphabet=data.train_class_alphabet if data else None,
                                               mix=data.mix if data else None)
        run.models[0] = net
        run.steps[args.protonet_train] = steps
        run.train_wall_s, run.train_cpu_s = wall, cpu
        metrics = {s: protonet_metric(net) for s in settings}
    else:
        all_ways = sorted({parse_setting(s)[0] for s in settings})
        for ways in all_ways:
            share = budget_s / len(all_ways)
            maml, steps, wall, cpu = train_maml(train_data, ways, method == "fomaml", share, args, log, init=init)
            run.models[ways] = maml
            run.steps[f"{ways}-way"] = steps
            run.train_wall_s += wall
            run.train_cpu_s += cpu
        metrics = {s: maml_metric(run.models[parse_setting(s)[0]], args.test_inner_steps) for s in settings}
    streams = {s: test_sampler(test_data, s, args) for s in settings}
    if data is not None and data.test_class_alphabet:
        from metalearn_lite.data.within_alphabet import WithinAlphabetSampler
        lake = "lake20" if method == "protonet" else "lake5"
        ways = 20 if method == "protonet" else 5
        if method == "protonet" or 5 in run.models:
            metrics[lake] = metrics[settings[0]] if method == "protonet" else maml_metric(run.models[5],
                                                                                            args.test_inner_steps)
            streams[lake] = WithinAlphabetSampler(test_data, data.test_class_alphabet, ways, 1, 1, seed=20_000)
    if on_trained is not None:
        on_trained(run)
    start = time.perf_counter()
    for setting, stream in streams.items():
        run.results[setting] = evaluate(metrics[setting], stream, num_episodes=args.episodes,
                                        description=f"{method} {setting}")
        log(f"  {METHOD_NAMES[method]} {setting}: {run.results[setting].percent()}")
    run.test_wall_s = time.perf_counter() - start
    return run


def format_table(runs: list[MethodRun], settings: list[str], data_name: str) -> str:
    head = f"{'method':<30}" + "".join(f"{s:>17}" for s in settings) + f"{'train s':>9}{'test s':>8}"
    lines = [f"Test accuracy (%) on {data_name}, mean +/- 95% CI over the test episodes", head, "-" * len(head)]
    for run in runs:
        cells = "".join(f"{100 * run.results[s].mean:>10.2f} +/-{100 * run.results[s].ci95:>4.2f}"
                        if s in run.results else f"{'-':>17}" for s in settings)
        lines.append(f"{METHOD_NAMES[run.method]:<30}{cells}{run.train_wall_s:>9.0f}{run.test_wall_s:>8.0f}")
    lines.append("Papers, on Omniglot (hours of training on a GPU):")
    for name, row in PAPER.items():
        lines.append(f"{name:<30}" + "".join(f"{row[s]:>17.1f}" if s in row else f"{'-':>17}" for s in settings))
    return "\n".join(lines)


def save_checkpoints(runs: list[MethodRun], folder: Path, data_name: str, args, command: str, log,
                     data: DataSet | None = None) -> None:
    """ProtoNet's encoder -> ``protonet_glyphs_conv4.pt``; the 5-way MAML model -> ``maml_glyphs_conv4_5w1s.pt``
    (first order; second order -> ``maml2nd_...``), in the one checkpoint format (``save_checkpoint(path,
    model, config=...)``: float32, loadable with ``weights_only=True``; into the shipped folder, the
    registry entry is updated).

    Called once right after training (``test_accuracy`` empty, so a long test cannot lose the
    weights) and again after testing."""
    folder.mkdir(parents=True, exist_ok=True)
    common = {"command": command, "data": data_name, "torch": torch.__version__, "threads": args.threads,
              "budget_minutes": args.budget_minutes, "test_episodes": args.episodes,
              "note": (f"trained {args.budget_minutes:g} min wall on a CPU (train_cpu_s: CPU seconds): far below "
                       "the papers' budgets (hours on a GPU); accuracy is lower than theirs"),
              "augmentation": {"rotations": args.rotations, "affine": args.affine,
                               "affine_degrees": args.affine_degrees if args.affine else 0, "elastic": _elastic(args)}}
    if args.init_from is not None:
        common.update(init=_init_label(args.init_from), init_history=_init_history(args))
    if data is not None and data.glyphs is not None:
        common["glyphs_generator"] = data.glyphs
    if data is not None and data.mix is not None:
        common["mix_glyphs"] = {"fraction": args.mix_glyphs, "glyphs_generator": data.mix_glyphs}
    real = data is not None and data.key in REAL_DATA
    if real:
        common.update({
            "test_queries": args.test_queries, "real_train_set": data.key, "real_train_alphabets": list(data.train_alphabets),
            "test_alphabets": list(data.test_alphabets), "license": OMNIGLOT_LICENSE,
            "init": (_init_label(args.init_from) if args.init_from is not None else
                     "the shipped Glyphs model (protonet_glyphs_conv4.pt / maml*_glyphs_conv4_5w1s.pt)"
                     if data.init == "shipped" else "random"),
            "init_history": _init_history(args),
            "within_alphabet_fraction": args.within_alphabet,
            "note": (f"trained {args.budget_minutes:g} min wall on a shared 2-core "
                     "CPU; tested on real alphabets it never saw (test_alphabets); lake20 = 20-way one-shot "
                     "within one alphabet, support and query by different drawers (Lake et al. 2015)")})
    for run in runs:
        test = {s: {"mean": round(r.mean, 4), "ci95": round(r.ci95, 4), "episodes": r.num_episodes}
                for s, r in run.results.items()}
        timing = {"train_wall_s": round(run.train_wall_s, 1), "train_cpu_s": round(run.train_cpu_s, 1)}
        if run.method == "protonet":
            encoder = run.models[0].encoder
            ways, shots = parse_setting(args.protonet_train)
            config = {"model": "Conv4", "model_kwargs": {"num_classes": None, "hidden": 64, "norm": "batch"},
                      "train": {"num_ways": ways, "num_shots": shots, "num_queries": args.protonet_queries,
                                "episodes": run.steps[args.protonet_train], "lr": args.protonet_lr,
                                "lr_schedule": "x0.5 at 50% and 75% of the budget", "seed": args.seed,
                                "class_loss": args.class_loss},
                      "distance": "euclidean"}
            path = folder / (real_checkpoint_name("protonet", data.key) if real else PROTONET_CHECKPOINT)
        elif 5 in run.models:
            encoder = run.models[5].model
            config = {"model": "Conv4", "model_kwargs": {"num_classes": 5, "hidden": 64, "norm": "batch"},
                      "first_order": run.method == "fomaml", "inner_lr": args.inner_lr,
                      "train_inner_steps": args.train_inner_steps, "test_inner_steps": args.test_inner_steps,
                      "train": {"num_ways": 5, "num_shots": args.maml_train_shots, "num_queries": args.maml_queries,
                                "meta_batch": args.meta_batch, "meta_steps": run.steps["5-way"],
                                "outer_lr": args.maml_outer_lr, "seed": args.seed}}
            path = folder / (real_checkpoint_name(run.method, data.key) if real else MAML_CHECKPOINTS[run.method])
            test = {s: v for s, v in test.items() if s == "lake5" or parse_setting(s)[0] == 5}
        else:
            continue
        # the one checkpoint format: {"model": "Conv4", "config": its kwargs, "state_dict": float32 weights}
        digest = save_checkpoint(path, encoder.float(), metadata={**common, "config": config, "test_accuracy": test,
                                                                  **timing}, config=config["model_kwargs"])
        log(f"saved {path} ({path.stat().st_size / 1e6:.2f} MB, sha256 {digest[:12]}...)")


def glyph_style(args):
    """``--glyphs-pen`` / ``--glyphs-elastic`` as a ``GlyphStyle`` (the published one without them)."""
    from metalearn_lite.data.glyph_render import DEFAULT_STYLE, GlyphStyle

    def pair(text: str | None, default: tuple[float, float], flag: str) -> tuple[float, float]:
        if text is None:
            return default
        try:
            low, high = (float(v) for v in text.split(","))
        except ValueError:
            raise SystemExit(f"{flag} expects LOW,HIGH (two numbers), got {text!r}") from None
        return low, high

    try:
        return GlyphStyle(pen_radius=pair(args.glyphs_pen, DEFAULT_STYLE.pen_radius, "--glyphs-pen"),
                          elastic=pair(args.glyphs_elastic, DEFAULT_STYLE.elastic, "--glyphs-elastic"))
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


def load_glyphs_data(args, log) -> DataSet:
    """The Glyphs background/evaluation class images, drawn in ``glyph_style(args)`` (generated
    and cached on first use), optionally with only ``--glyphs-drawers`` drawers per character and
    ``--glyphs-alphabets`` of the background alphabets (a seeded choice): the generator studies."""
    t0 = time.perf_counter()
    style = glyph_style(args)
    train, test = Glyphs(background=True, style=style), Glyphs(background=False, style=style)
    log(f"Glyphs: train {train!r}; test {test!r} ({time.perf_counter() - t0:.1f} s to load)")
    images = train.class_images()
    study = {"style": style.key or "published", "pen_radius": list(style.pen_radius), "elastic": list(style.elastic)}
    if args.glyphs_alphabets is not None:
        count = args.glyphs_alphabets
        if not 1 <= count <= len(train.alphabets):
            raise SystemExit(f"--glyphs-alphabets must be 1-{len(train.alphabets)} (the background alphabets), got {count}")
        keep = sorted(torch.randperm(len(train.alphabets), generator=torch.Generator().manual_seed(args.seed))[:count].tolist())
        classes = [c for c, a in enumerate(train.character_alphabet) if a in keep]
        images = images[classes]
        study["alphabets"] = [train.alphabets[a] for a in keep]
    if args.glyphs_drawers is not None:
        _, shots = parse_setting(args.protonet_train)
        low = shots + args.protonet_queries     # one training episode's support and queries of a class
        if not low <= args.glyphs_drawers <= images.shape[1]:
            raise SystemExit(f"--glyphs-drawers must be {low}-{images.shape[1]} ({shots} support + "
                             f"{args.protonet_queries} query drawers per class in training), got {args.glyphs_drawers}")
        images = images[:, :args.glyphs_drawers]
        study["drawers"] = args.glyphs_drawers
    log(f"Glyphs training set: {images.shape[0]} characters x {images.shape[1]} drawers; style {study['style']}")
    name = "Glyphs (evaluation alphabets)" + (f", style {style.key}" if style.key else "")
    return DataSet(name, images, test.class_images(), glyphs=study)


def load_omniglot(args, log):
    """The Vinyals split's train/test class images, or None with a message when the zips are absent."""
    from metalearn_lite.data.omniglot import OmniglotNotFoundError, vinyals_split
    try:
        split = vinyals_split(root=args.omniglot_root, download=False, num_val=0, progress=False)
    except (OmniglotNotFoundError, FileNotFoundError) as exc:
        first = str(exc).split(". ")[0]
        log(f"Omniglot: skipped, the full zips are not available ({first}). "
            "Get them with `metalearn data omniglot --download` or pass --omniglot-root.")
        return None
    return split.train, split.test


def _init_label(path: Path) -> str:
    """``"<file> (sha256 <first 12>...)"``: which checkpoint a ``--init-from`` run started from."""
    from metalearn_lite.training.checkpoint import checkpoint_info

    return f"{Path(path).name} (sha256 {checkpoint_info(path)['sha256'][:12]}...)"


def _init_history(args) -> list[dict]:
    """The runs a ``--init-from`` ProtoNet came from (their commands and episodes), oldest first."""
    if args.init_from is None:
        return []
    from metalearn_lite.training.checkpoint import checkpoint_info

    meta = checkpoint_info(args.init_from)["metadata"]
    return [*meta.get("init_history", []), {"command": meta["command"], "episodes": meta["config"]["train"]["episodes"],
                                            "train_cpu_s": meta.get("train_cpu_s")}]


def load_small(key: str, args, log) -> DataSet | None:
    """``--data small1`` / ``glyphs+small1`` (or 2): train on that small background set (with
    ``--rotations`` as new classes), test on the *other* small set's alphabets that the first
    lacks (they share Latin and Greek). Found by the loader: ``--omniglot-root``, the cache
    (``metalearn data omniglot --download``), or ``../shared/data/omniglot``."""
    here = Path(__file__).resolve().parent
    if str(here) not in sys.path:
        sys.path.insert(0, str(here))
    from real_handwriting import omniglot_set  # bench/real_handwriting.py

    from metalearn_lite.data.within_alphabet import held_out_alphabets

    train_small = key[-6:]
    test_small = "small2" if train_small == "small1" else "small1"
    train_set, test_set = omniglot_set(train_small, args.omniglot_root, log), omniglot_set(test_small, args.omniglot_root, log)
    if train_set is None or test_set is None:
        log(f"{key}: skipped, needs images_background_small1.zip and images_background_small2.zip "
            "(`metalearn data omniglot --download` or --omniglot-root)")
        return None
    test_alphabets = [test_set.alphabets[i] for i in held_out_alphabets(test_set.alphabets, train_set.alphabets)]
    test = test_set.subset(test_alphabets, f"{test_small}-only")
    rotations = [int(r) for r in args.rotations.split(",")]
    train = rotate_classes(train_set.class_images, rotations) if rotations != [0] else train_set.class_images
    name = (f"Omniglot {train_small} ({', '.join(train_set.alphabets)}; rotations {args.rotations}"
            f"{', affine' if args.affine else ''}{', elastic' if _elastic(args) else ''}) -> {test.name} "
            f"({', '.join(test_alphabets)})")
    if getattr(args, "init_from", None) is not None:
        name = f"{Path(args.init_from).name} fine-tuned on " + name
    elif key.startswith("glyphs+"):
        name = "shipped Glyphs model fine-tuned on " + name
    train_class_alphabet = [f"{a}@{r}" for a in train_set.class_alphabet for r in rotations]   # rotate_classes' order
    return DataSet(name, train, test.class_images, key=key, init="shipped" if key.startswith("glyphs+") else None,
                   train_class_alphabet=train_class_alphabet,
                   train_alphabets=tuple(train_set.alphabets), test_alphabets=tuple(test_alphabets),
                   test_class_alphabet=test.class_alphabet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated subset of {','.join(METHODS)} (default: all)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="ProtoNet's test settings, e.g. 5w1s,20w5s")
    parser.add_argument("--maml-settings", default="5w1s,5w5s",
                        help="MAML's test settings (default 5w1s,5w5s; 20-way adds ~20 min, see the docstring)")
    parser.add_argument("--budget-minutes", type=float, default=3.0,
                        help="training wall-clock budget per method and data set (default 3)")
    parser.add_argument("--episodes", type=int, default=600, help="test episodes per setting (default 600)")
    parser.add_argument("--save-checkpoints", metavar="DIR", type=Path, default=None,
                        help="save the Glyphs models as protonet_glyphs_conv4.pt / maml_glyphs_conv4_5w1s.pt "
                             "(first order) / maml2nd_glyphs_conv4_5w1s.pt (second order) in DIR")
    parser.add_argument("--data", default="glyphs,omniglot",
                        help="comma-separated: glyphs, omniglot (full zips, Vinyals split), small1, small2 (train on "
                             "one small background set, test on the other's own alphabets), glyphs+small1, "
                             "glyphs+small2 (fine-tune the shipped Glyphs models on it); default glyphs,omniglot")
    parser.add_argument("--rotations", default="0",
                        help="real small sets: rotations (degrees) added as new training classes, e.g. 0,90,180,270")
    parser.add_argument("--affine", action="store_true",
                        help="a random small affine map (rotation, zoom 0.9-1.1, shear, shift) per training image")
    parser.add_argument("--affine-degrees", type=float, default=10.0)
    parser.add_argument("--elastic", type=float, default=0.0, metavar="ALPHA",
                        help="ProtoNet training: also bend each image by a smooth random displacement field "
                             "(random_elastic, std ALPHA of the half-width; 0.08 = 1.1 px; default 0: off)")
    parser.add_argument("--init-from", type=Path, default=None, metavar="FILE",
                        help="ProtoNet: continue training from this checkpoint (its recorded runs are kept in init_history)")
    parser.add_argument("--within-alphabet", type=float, default=0.0, metavar="P",
                        help="real small sets: draw this fraction of ProtoNet's training episodes within one alphabet, "
                             "support and query by different drawers (Lake's test protocol); default 0")
    parser.add_argument("--glyphs-pen", default=None, metavar="LOW,HIGH",
                        help="Glyphs generator study: the pen radius range in pixels (published 0.7,1.35); "
                             "another style is generated once and cached as its own file")
    parser.add_argument("--glyphs-elastic", default=None, metavar="LOW,HIGH",
                        help="Glyphs generator study: each drawer's stroke jitter (elastic amplitude, "
                             "published 0.025,0.06)")
    parser.add_argument("--glyphs-drawers", type=int, default=None, metavar="N",
                        help="Glyphs generator study: train on the first N of the 20 drawers per character")
    parser.add_argument("--glyphs-alphabets", type=int, default=None, metavar="N",
                        help="Glyphs generator study: train on N of the background alphabets (seeded choice)")
    parser.add_argument("--mix-glyphs", type=float, default=0.0, metavar="P",
                        help="real small sets, ProtoNet: draw this fraction of the training episodes from Glyphs "
                             "(drawn with --glyphs-pen / --glyphs-elastic) instead of the real set; default 0")
    parser.add_argument("--omniglot-root", default=None, help="folder with the full Omniglot zips")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-queries", type=int, default=15, help="query examples per class at test (15)")
    parser.add_argument("--protonet-train", default="20w1s", help="ProtoNet training episodes (default 20w1s)")
    parser.add_argument("--protonet-queries", type=int, default=5)
    parser.add_argument("--protonet-lr", type=float, default=1e-3)
    parser.add_argument("--class-loss", type=float, default=0.0, metavar="W",
                        help="ProtoNet: add W x a softmax over all training classes (a learned centre per class, "
                             "squared Euclidean logits) on every image of each episode; same forward pass (default 0)")
    parser.add_argument("--maml-train-shots", type=int, default=1)
    parser.add_argument("--maml-queries", type=int, default=5, help="query examples per class in MAML training")
    parser.add_argument("--meta-batch", type=int, default=4)
    parser.add_argument("--maml-outer-lr", type=float, default=1e-3)
    parser.add_argument("--inner-lr", type=float, default=0.4)
    parser.add_argument("--train-inner-steps", type=int, default=1)
    parser.add_argument("--test-inner-steps", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=None, help="stop training after this many steps too")
    parser.add_argument("--log-every", type=int, default=200)
    args = parser.parse_args(argv)

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        parser.error(f"--methods must be a comma-separated subset of {','.join(METHODS)}, got {args.methods!r}")
    settings = [s.strip().lower() for s in args.settings.split(",") if s.strip()]
    maml_settings = [s.strip().lower() for s in args.maml_settings.split(",") if s.strip()]
    for s in settings + maml_settings:
        parse_setting(s)
    parse_setting(args.protonet_train)

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(sys.argv[1:] if argv is None else argv)])

    def log(text: str) -> None:
        print(text, flush=True)

    log(f"command: {command}")
    log(f"torch {torch.__version__}, {args.threads} thread(s); methods {', '.join(methods)}; settings "
        f"{', '.join(settings)} (MAML: {', '.join(maml_settings)}); budget {args.budget_minutes:g} min of "
        "training per method and data set; "
        f"{args.episodes} test episodes per setting.")
    log("NOTE: these budgets are far below the papers' (hours of GPU training); expect lower accuracy than "
        "theirs. Wall times on a shared machine are noisy; CPU seconds are printed too.")
    log(f"ProtoNet trains on {args.protonet_train} ({args.protonet_queries} queries/class); MAML trains one "
        f"model per number of ways on {args.maml_train_shots}-shot tasks, meta-batch {args.meta_batch}, "
        f"inner lr {args.inner_lr}, {args.train_inner_steps} inner step(s) in training, "
        f"{args.test_inner_steps} at test.")

    datasets: list[DataSet] = []
    wanted = [d.strip() for d in args.data.split(",") if d.strip()]
    bad = [d for d in wanted if d not in DATA_CHOICES]
    if bad or not wanted:
        parser.error(f"--data must be a comma-separated subset of {','.join(DATA_CHOICES)}, got {args.data!r}")
    if "glyphs" in wanted:
        datasets.append(load_glyphs_data(args, log))
    if "omniglot" in wanted:
        omniglot = load_omniglot(args, log)
        if omniglot is not None:
            datasets.append(DataSet("Omniglot (Vinyals split, rotations)", *omniglot, key="omniglot"))
    if not 0.0 <= args.mix_glyphs < 1.0:
        parser.error(f"--mix-glyphs must be a fraction in [0, 1), got {args.mix_glyphs}")
    if args.mix_glyphs > 0 and not any(key in REAL_DATA for key in wanted):
        parser.error("--mix-glyphs mixes Glyphs episodes into real training: it needs --data small1/small2/glyphs+smallN")
    mix = load_glyphs_data(args, log) if args.mix_glyphs > 0 else None
    for key in wanted:
        if key in REAL_DATA:
            real = load_small(key, args, log)
            if real is not None:
                if mix is not None:
                    real.mix, real.mix_glyphs = mix.train, mix.glyphs
                    real.name += f", {args.mix_glyphs:g} of the episodes from Glyphs ({mix.glyphs['style']})"
                datasets.append(real)

    tables = []
    for data in datasets:
        data_name, train_data, test_data = data.name, data.train, data.test
        log(f"\n== {data_name}: {train_data.shape[0]} training classes, {test_data.shape[0]} test classes")
        runs = []
        for method in methods:
            log(f"-- {METHOD_NAMES[method]}")
            save = None
            if args.save_checkpoints is not None and data.key in ("glyphs", *REAL_DATA):
                def save(run: MethodRun, data: DataSet = data) -> None:
                    save_checkpoints([run], args.save_checkpoints, data.name, args, command, log, data=data)
            run = run_method(method, train_data, test_data, maml_settings if "maml" in method else settings,
                             args, log, on_trained=save, data=data if data.key in REAL_DATA else None)
            runs.append(run)
            if save is not None:
                save(run)
        all_settings = settings + [s for s in maml_settings if s not in settings]
        all_settings += [s for s in ("lake20", "lake5") if any(s in r.results for r in runs)]
        table = format_table(runs, all_settings, data_name)
        tables.append(table)
        log("\n" + table)
    log("\n== Summary\ncommand: " + command)
    for table in tables:
        log(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
