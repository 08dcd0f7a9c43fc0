"""Learning-rate schedules counted in iterations, as multiplicative factors of the base rate."""

from __future__ import annotations

from collections.abc import Sequence


class StepSchedule:
    """The paper's schedule: the base rate divided by ``1/gamma`` at each milestone.

    With ``warmup_iters`` > 0 the factor first rises linearly from ``warmup_start`` to 1 over
    that many iterations (a smooth ramp, not the paper's step; see
    ``conf/protocol/cifar10/cpu.yaml``).
    With ``warmup_gate`` < 1 the factor is multiplied by it until ``release()`` is called: the
    paper's ResNet-110 warm-up (0.01 = 0.1 x 0.1 until training error falls below 80 %), which
    the training module releases; the flag is saved in checkpoints with the scheduler.
    ``factor(i)`` is the factor applied to the update of iteration ``i`` (counted from 0), which
    is also what ``LambdaLR`` asks for after ``i`` scheduler steps.
    """

    def __init__(
        self,
        milestones: Sequence[int],
        gamma: float = 0.1,
        warmup_iters: int = 0,
        warmup_start: float = 0.0,
        warmup_gate: float = 1.0,
    ):
        if list(milestones) != sorted(milestones):
            raise ValueError(f"milestones must be increasing; got {list(milestones)}")
        self.milestones, self.gamma = list(milestones), gamma
        self.warmup_iters, self.warmup_start = warmup_iters, warmup_start
        self.warmup_gate, self.released = warmup_gate, warmup_gate == 1.0

    def release(self) -> None:
        self.released = True

    def __call__(self, iteration: int) -> float:
        decay = self.gamma ** sum(iteration >= milestone for milestone in self.milestones)
        if not self.released:
            decay *= self.warmup_gate
        if iteration < self.warmup_iters:
            progress = iteration / self.warmup_iters
            return decay * (self.warmup_start + (1 - self.warmup_start) * progress)
        return decay


class PlateauSchedule:
    """The paper's ImageNet schedule: the base rate divided by ``1/gamma`` when the validation
    error plateaus, judged as no improvement of at least ``threshold`` points over the best for
    ``patience`` evaluations in a row; at most ``max_reductions`` times. The training module
    calls ``observe`` after each evaluation; the state is saved in checkpoints with the
    scheduler (``LambdaLR`` keeps a callable object's attributes).
    """

    def __init__(self, patience: int = 8, threshold: float = 0.2, gamma: float = 0.1,
                 max_reductions: int = 3):
        self.patience, self.threshold, self.gamma = patience, threshold, gamma
        self.max_reductions = max_reductions
        self.factor, self.best, self.waited, self.reductions = 1.0, float("inf"), 0, 0

    def observe(self, error: float) -> None:
        if error < self.best - self.threshold:
            self.best, self.waited = error, 0
            return
        self.waited += 1
        if self.waited >= self.patience and self.reductions < self.max_reductions:
            self.factor *= self.gamma
            self.reductions += 1
            self.best, self.waited = min(self.best, error), 0

    def __call__(self, iteration: int) -> float:
        return self.factor
