"""A seeded student simulator: multi-skill 2PL responses plus BKT-style learning from practice.

Each item ``i`` has a discrimination ``a_i``, a difficulty ``b_i`` and a row ``Q[i]`` of the
Q-matrix (which skills it needs; one or two per item). Each student ``j`` has a base ability
``theta_js`` per skill and a binary mastery state ``m_js``. The answer is correct with

    P(y_ij = 1) = sigmoid(a_i * (mean_{s in Q[i]} (theta_js + mastery_gain * m_js) - b_i))

Practice changes mastery like Bayesian knowledge tracing (Corbett & Anderson, 1995): after
answering item ``i``, each not-yet-mastered skill of the item becomes mastered with
probability ``learn_correct`` (answer correct) or ``learn_wrong`` (answer wrong), and every
mastered skill is forgotten with probability ``forget`` per exercise. So exercises that are
far too hard teach little (mostly wrong answers), and exercises on mastered skills teach
nothing: the learning-path policies in ``learning_paths`` exploit exactly that.

Everything is drawn from a ``torch.Generator`` seeded by ``seed``: same seed, same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["ItemBank", "StudentSimulator", "Trajectory"]


@dataclass(frozen=True)
class ItemBank:
    """Item parameters.

    Attributes:
        a: [num_items] discriminations (> 0).
        b: [num_items] difficulties.
        q_matrix: [num_items, num_skills] float 0/1, at least one skill per item.
    """

    a: torch.Tensor
    b: torch.Tensor
    q_matrix: torch.Tensor

    @property
    def num_items(self) -> int:
        return self.a.shape[0]

    @property
    def num_skills(self) -> int:
        return self.q_matrix.shape[1]


@dataclass(frozen=True)
class Trajectory:
    """A practice session of ``num_students`` students over ``T`` exercises.

    Attributes:
        items: [num_students, T] long, the exercise given at each step.
        responses: [num_students, T] float 0/1.
        mastery: [num_students, T + 1, num_skills] float 0/1, the true mastery before step 0
            and after every step.
    """

    items: torch.Tensor
    responses: torch.Tensor
    mastery: torch.Tensor

    def mean_mastery(self) -> torch.Tensor:
        """[num_students, T + 1] fraction of skills mastered."""
        return self.mastery.mean(-1)


class StudentSimulator:
    """Simulated students: multi-skill 2PL answers and BKT-style learning (see module docstring).

    Args:
        num_items, num_skills: size of the item bank.
        seed: seeds item parameters and every later draw.
        mastery_gain: ability added on a skill once it is mastered.
        learn_correct, learn_wrong: P(learn an unmastered skill of the item) after a correct /
            wrong answer.
        forget: P(forget a mastered skill) per exercise.
        initial_mastery: P(a skill is mastered at the start).
        ability_sd: SD of the base abilities theta (per skill, correlated across skills with
            ``skill_correlation``).
        item_bank: use these items instead of drawing them.
    """

    def __init__(
        self,
        num_items: int = 60,
        num_skills: int = 5,
        *,
        seed: int = 0,
        mastery_gain: float = 2.0,
        learn_correct: float = 0.25,
        learn_wrong: float = 0.03,
        forget: float = 0.005,
        initial_mastery: float = 0.2,
        ability_sd: float = 1.0,
        skill_correlation: float = 0.6,
        item_bank: ItemBank | None = None,
    ):
        for name, p in (("learn_correct", learn_correct), ("learn_wrong", learn_wrong), ("forget", forget),
                        ("initial_mastery", initial_mastery)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
        self.generator = torch.Generator().manual_seed(seed)
        self.mastery_gain = mastery_gain
        self.learn_correct = learn_correct
        self.learn_wrong = learn_wrong
        self.forget = forget
        self.initial_mastery = initial_mastery
        self.ability_sd = ability_sd
        self.skill_correlation = skill_correlation
        if item_bank is None:
            item_bank = self._draw_items(num_items, num_skills)
        self.items = item_bank

    def _draw_items(self, num_items: int, num_skills: int) -> ItemBank:
        g = self.generator
        a = torch.exp(0.3 * torch.randn(num_items, generator=g))
        # difficulties spread so that items range from easy to hard for an average student,
        # shifted up by half the mastery gain (unmastered students find them hard)
        b = torch.randn(num_items, generator=g) + 0.5 * self.mastery_gain
        q = torch.zeros(num_items, num_skills)
        first = torch.arange(num_items) % num_skills
        q[torch.arange(num_items), first] = 1.0
        second = torch.randint(0, num_skills, (num_items,), generator=g)
        two = torch.rand(num_items, generator=g) < 0.3
        q[torch.arange(num_items)[two], second[two]] = 1.0
        return ItemBank(a=a, b=b, q_matrix=q)

    # students --------------------------------------------------------------------------
    def sample_students(self, num_students: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw students.

        Returns:
            theta: [num_students, num_skills] base abilities; mastery: [num_students, num_skills] 0/1.
        """
        g = self.generator
        s = self.items.num_skills
        rho = self.skill_correlation
        common = torch.randn(num_students, 1, generator=g)
        own = torch.randn(num_students, s, generator=g)
        theta = self.ability_sd * (rho ** 0.5 * common + (1 - rho) ** 0.5 * own)
        mastery = (torch.rand(num_students, s, generator=g) < self.initial_mastery).float()
        return theta, mastery

    def success_proba(self, theta: torch.Tensor, mastery: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """P(correct).

        Args:
            theta, mastery: [S, num_skills].
            items: [S] long (one item per student) or None (every item).

        Returns:
            [S] if ``items`` is given, else [S, num_items].
        """
        q = self.items.q_matrix
        eff = theta + self.mastery_gain * mastery  # [S, skills]
        per_item = eff @ q.T / q.sum(1)  # [S, I]
        p = torch.sigmoid(self.items.a * (per_item - self.items.b))
        if items is None:
            return p
        return p.gather(1, items.unsqueeze(1)).squeeze(1)

    def respond(self, theta: torch.Tensor, mastery: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Draw answers [S] (0/1) to ``items`` [S] for students in state (theta, mastery) [S, skills]."""
        p = self.success_proba(theta, mastery, items)
        return (torch.rand(p.shape, generator=self.generator) < p).float()

    def learn(self, mastery: torch.Tensor, items: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        """BKT transition after practising ``items`` [S] with ``responses`` [S]: new mastery [S, skills]."""
        g = self.generator
        practised = self.items.q_matrix[items]  # [S, skills]
        p_learn = torch.where(responses.unsqueeze(1) > 0.5, self.learn_correct, self.learn_wrong) * practised
        learned = torch.rand(mastery.shape, generator=g) < p_learn
        forgotten = torch.rand(mastery.shape, generator=g) < self.forget
        new = torch.where(mastery > 0.5, (~forgotten).float(), learned.float())
        return new

    # data sets -------------------------------------------------------------------------
    def response_matrix(self, num_students: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A test form: every student answers every item once, without learning in between.

        Returns:
            responses: [num_students, num_items] 0/1; theta: [num_students, num_skills];
            mastery: [num_students, num_skills].
        """
        theta, mastery = self.sample_students(num_students)
        p = self.success_proba(theta, mastery)
        responses = (torch.rand(p.shape, generator=self.generator) < p).float()
        return responses, theta, mastery

    def practice(
        self,
        policy: Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor],
        num_students: int,
        num_steps: int,
        *,
        observe: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    ) -> Trajectory:
        """Simulate ``num_steps`` exercises chosen by ``policy``.

        Args:
            policy: ``policy(step, past_items [S, step], past_responses [S, step]) -> items [S]``.
                It sees only what a tutor sees: the exercises and the answers so far.
            num_students: S.
            num_steps: T.
            observe: optional ``observe(items [S], responses [S])`` called after each step.

        Returns:
            Trajectory with the true mastery after every step.
        """
        theta, mastery = self.sample_students(num_students)
        items_hist = torch.empty(num_students, 0, dtype=torch.long)
        resp_hist = torch.empty(num_students, 0)
        masteries = [mastery]
        for step in range(num_steps):
            items = policy(step, items_hist, resp_hist).long()
            if items.shape != (num_students,):
                raise ValueError(f"policy must return [num_students] = [{num_students}] item indices, got {list(items.shape)}")
            responses = self.respond(theta, mastery, items)
            mastery = self.learn(mastery, items, responses)
            if observe is not None:
                observe(items, responses)
            items_hist = torch.cat([items_hist, items.unsqueeze(1)], 1)
            resp_hist = torch.cat([resp_hist, responses.unsqueeze(1)], 1)
            masteries.append(mastery)
        return Trajectory(items=items_hist, responses=resp_hist, mastery=torch.stack(masteries, 1))
