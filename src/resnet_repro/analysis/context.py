"""What every recipe (one module per figure, table or analysis: ``analysis.recipes``) is given:
the sweep's config and runs, where to write, and how to redo it."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from resnet_repro.analysis.collect import summarize
from resnet_repro.runs import Run


@dataclass
class Context:
    """The sweep's first config (data, profile, analysis settings), its runs (every point of
    the grid, finished or not), the results folder, the command that redoes it, and the
    descriptions of the profile (``protocol``) and of the analysis budget (``budget_note``,
    empty where the experiment evaluates no trained nets) for the README, and the nets of the
    experiment's grid that this sweep leaves out (``left_out``: a partial figure)."""

    config: DictConfig
    runs: list[Run]
    out_dir: Path
    command: str
    protocol: list[str]
    budget_note: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    dataset_title: str = "CIFAR-10"
    started: float = field(default_factory=time.perf_counter)
    #: The runs whose nets this call measured, and those it read back from ``per_net/``.
    measured_now: list[str] = field(default_factory=list)
    read_back: list[str] = field(default_factory=list)

    @property
    def minutes(self) -> float:
        """Wall-clock minutes since the recipe was given its context: what it cost."""
        return (time.perf_counter() - self.started) / 60

    @property
    def experiment(self) -> str:
        return self.config.experiment_name or "runs"

    @property
    def profile(self) -> str:
        return self.config.profile_name

    @property
    def short_schedule(self) -> bool:
        """Whether the runs train on a schedule shorter than the paper's (every profile but
        paper): their nets are far from converged, which an analysis README must say."""
        return self.profile != "paper"

    @property
    def budget(self) -> DictConfig:
        """How much an analysis of trained nets evaluates (conf/analysis_budget/)."""
        return self.config.analysis.budget

    @property
    def finished(self) -> list[Run]:
        """The runs that finished, in the sweep's order."""
        return [run for run in self.runs if run.done]

    def trained(self, purpose: str) -> list[Run]:
        """The finished runs, for a recipe that measures trained nets: with none, an exit that
        says what trains them."""
        if not self.finished:
            raise SystemExit(f"no finished runs to {purpose}: train them first "
                             f"(make reproduce-fig6 PROFILE={self.profile})")
        return self.finished

    @functools.cached_property
    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(curves, summary) of the runs: ``collect.summarize``."""
        return summarize(self.runs)

    def title(self, what: str) -> str:
        return f"{what}, profile `{self.profile}`"


def partial_grid_note(left_out: list[str]) -> list[str]:
    """The README line naming the nets of the experiment's grid that a sweep left out (none
    where it ran the whole grid)."""
    if not left_out:
        return []
    return [f"- A part of the experiment's grid: its {', '.join(left_out)} are left out (not in "
            "this sweep), so the figure and tables show only the nets above."]
