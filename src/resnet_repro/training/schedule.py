"""Learning-rate schedules counted in iterations, as multiplicative factors of the base rate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class StepSchedule:
    """The paper's schedule: the base rate divided by ``1/gamma`` at each milestone.

    With ``warmup_iters`` > 0 the factor first rises linearly from ``warmup_start`` to 1 over
    that many iterations (a smooth ramp, not the paper's step; see
    ``conf/protocol/cifar10/cpu.yaml``).

    ``gate`` is the paper's warm-up for its deepest nets (section 4.2: ResNet-110 "uses 0.01 to
    warm up the training until the training error is below 80 % (about 400 iterations), and then
    goes back to 0.1"), as a rule: ``{"from_depth": 110, "depth": <the net's>, "factor": 0.1,
    "below_error": 80.0}``. Nets at least ``from_depth`` deep, plain and residual alike, train
    at ``factor`` x the schedule until a training error below ``below_error`` % is reported
    (``report_training_error``, once per logging window); the update after that report uses
    the full rate. The gate's state is plain attributes, saved in checkpoints with the scheduler
    (``LambdaLR`` keeps a callable object's ``__dict__``).

    ``factor(i)`` is the factor applied to the update of iteration ``i`` (counted from 0), which
    is also what ``LambdaLR`` asks for after ``i`` scheduler steps.
    """

    def __init__(
        self,
        milestones: Sequence[int],
        gamma: float = 0.1,
        warmup_iters: int = 0,
        warmup_start: float = 0.0,
        gate: Mapping | None = None,
    ):
        if list(milestones) != sorted(milestones):
            raise ValueError(f"milestones must be increasing; got {list(milestones)}")
        self.milestones, self.gamma = list(milestones), gamma
        self.warmup_iters, self.warmup_start = warmup_iters, warmup_start
        gate = dict(gate or {})
        self.gated = bool(gate) and gate["depth"] >= gate["from_depth"]
        self.gate_factor = float(gate.get("factor", 1.0))
        self.gate_below_error = float(gate.get("below_error", 100.0))
        self.gate_open, self.gate_opened_at = not self.gated, None

    def report_training_error(self, error: float, iteration: int) -> bool:
        """The training error (%) of the window ending at ``iteration`` (iterations done);
        True where this report opens the gate."""
        if self.gate_open or error >= self.gate_below_error:
            return False
        self.gate_open, self.gate_opened_at = True, iteration
        return True

    def gate_record(self) -> dict:
        """For run.json: whether the gate applies, and the iteration at which it opened."""
        return {"applies": self.gated, "factor": self.gate_factor,
                "below_error": self.gate_below_error, "opened_at": self.gate_opened_at}

    def __call__(self, iteration: int) -> float:
        decay = self.gamma ** sum(iteration >= milestone for milestone in self.milestones)
        if not self.gate_open:
            decay *= self.gate_factor
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
