"""A record of a training run: one list of floats per metric, one entry per step."""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["History"]


@dataclass
class History:
    """``history["loss"]`` is the list of values logged at ``history.steps``."""

    steps: list[int] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)

    def log(self, step: int, **values: float) -> None:
        self.steps.append(int(step))
        for name, value in values.items():
            self.metrics.setdefault(name, []).append(float(value))

    def __getitem__(self, name: str) -> list[float]:
        if name not in self.metrics:
            raise KeyError(f"no metric {name!r} in history; it has {sorted(self.metrics)}")
        return self.metrics[name]

    def last(self, name: str, window: int = 1) -> float:
        """Mean of the last ``window`` values of a metric."""
        values = self[name][-window:]
        return sum(values) / len(values)

    def to_dict(self) -> dict:
        return {"steps": list(self.steps), "metrics": {k: list(v) for k, v in self.metrics.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "History":
        return cls(steps=list(data["steps"]), metrics={k: list(v) for k, v in data["metrics"].items()})
