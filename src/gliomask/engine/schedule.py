"""Learning-rate schedule: linear warm-up, then cosine decay over the run's progress.

Progress is the larger of steps done / planned steps and minutes spent / the wall-clock budget, so a
time-boxed run still ends its schedule at a small learning rate.
"""

from __future__ import annotations

import math


class WarmupCosine:
    def __init__(self, optimizer, *, base_lr: float, warmup_steps: int, total_steps: int,
                 max_seconds: float | None = None, min_ratio: float = 0.02):
        self.optimizer = optimizer
        self.base_lr, self.warmup_steps, self.total_steps = base_lr, warmup_steps, max(total_steps, 1)
        self.max_seconds, self.min_ratio = max_seconds, min_ratio
        self.step_count = 0
        self.elapsed = 0.0

    def progress(self) -> float:
        p = self.step_count / self.total_steps
        if self.max_seconds:
            p = max(p, self.elapsed / self.max_seconds)
        return min(p, 1.0)

    def factor(self) -> float:
        if self.step_count < self.warmup_steps:
            return 0.001 + (1 - 0.001) * self.step_count / self.warmup_steps
        cosine = 0.5 * (1 + math.cos(math.pi * self.progress()))
        return self.min_ratio + (1 - self.min_ratio) * cosine

    def apply(self) -> float:
        lr = self.base_lr * self.factor()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def step(self, elapsed: float) -> None:
        self.step_count += 1
        self.elapsed = elapsed

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "elapsed": self.elapsed}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step_count"])
        self.elapsed = float(state["elapsed"])
