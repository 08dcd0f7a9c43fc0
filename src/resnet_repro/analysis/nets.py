"""What the analyses of trained nets share (gradients, identity, lesion, landscape): the
finished runs of a sweep with their nets, the data as evaluation sees it, evaluation itself,
and the results folder's README."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from tqdm.auto import tqdm

from resnet_repro.analysis.collect import final_error, hardware_of, hardware_of_run
from resnet_repro.analysis.context import Context, partial_grid_note
from resnet_repro.bf16 import bf16_autocast
from resnet_repro.models import CifarResNet
from resnet_repro.runs import Run, curves_of, git_commit, hardware


def describe(run: Run) -> str:
    """One line naming a finished run and where its net came from."""
    return (f"{run.net} (seed {run.seed}, run {run.name}, profile {run.profile}, "
            f"{run.iterations} iterations, precision {run.precision}, "
            f"commit {', '.join(c[:10] for c in run.commits)}, data "
            f"{Path(run.data_source).name}, trained on "
            f"{hardware_of_run(run)})")


def run_labels(runs: list[Run]) -> dict[str, str]:
    """Each run's name in a README, figure or table: its net's, with the seed where the net
    has several seeds among ``runs``; keyed by the run's folder name."""
    seeds: dict[str, set] = {}
    for run in runs:
        seeds.setdefault(run.net, set()).add(run.seed)
    return {run.name: run.net if len(seeds[run.net]) == 1 else f"{run.net} seed {run.seed}"
            for run in runs}


class Sample(NamedTuple):
    """Images of one split as evaluation sees them, their labels, and the words a README uses
    for them (all of the split, or how large a subset of how many)."""
    images: torch.Tensor
    labels: torch.Tensor
    words: str


SPLIT_WORDS = {"train": "training", "test": "test"}


def dataset(config: DictConfig, split: str, count: int | None = None) -> Sample:
    """``count`` images of ``split`` (train or test; all by default), normalized as evaluation
    sees them (no augmentation), with their labels. A subset is a fixed random one (seed 0):
    the splits are stored class by class, so their first images are all of one class."""
    datamodule = instantiate(config.data, seed=config.seed)
    datamodule.setup()
    images, labels = datamodule.splits[split].tensors
    total = len(labels)
    words = f"all {total} {SPLIT_WORDS[split]} images"
    if count is not None and count < total:
        chosen = torch.randperm(total, generator=torch.Generator().manual_seed(0))[:count]
        images, labels = images[chosen], labels[chosen]
        words = f"{count} {SPLIT_WORDS[split]} images (a fixed random subset of {total})"
    return Sample(datamodule.prepare(images, training=False), labels, words)


#: The evaluation precisions of ``analysis.budget.precision``, named as ``trainer.precision``.
FP32, BF16 = "32-true", "bf16-mixed"


def in_precision(net: nn.Module, precision: str) -> contextlib.AbstractContextManager:
    """The context in which ``net`` evaluates in ``precision``: fp32 as it is; bf16 autocast
    with the fp32 weights moved to channels_last (its inputs go there by ``layout``), this
    project's fast CPU path (evaluation 1.9x as fast for ResNet-56: results/bench/)."""
    if precision == FP32:
        return contextlib.nullcontext()
    if precision != BF16:
        raise ValueError(f"analysis.budget.precision={precision}: use {FP32} or {BF16}")
    net.to(memory_format=torch.channels_last)
    return bf16_autocast(next(net.parameters()).device.type)


def layout(batch: torch.Tensor, precision: str) -> torch.Tensor:
    """A batch of images in the memory layout that ``in_precision`` evaluates."""
    return batch if precision == FP32 else batch.contiguous(memory_format=torch.channels_last)


@torch.inference_mode()
def evaluate(net: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 250, precision: str = FP32) -> tuple[float, float]:
    """(mean cross-entropy loss, error %) of ``net`` as it is (mode unchanged) on the set, in
    ``precision`` (the loss from fp32 logits)."""
    loss, wrong = 0.0, 0
    with in_precision(net, precision):
        for batch, truth in zip(images.split(batch_size), labels.split(batch_size),
                                strict=True):
            logits = net(layout(batch, precision)).float()
            loss += F.cross_entropy(logits, truth, reduction="sum").item()
            wrong += (logits.argmax(dim=1) != truth).sum().item()
    return loss / len(labels), 100.0 * wrong / len(labels)


def precision_note(nets: dict[str, nn.Module], images: torch.Tensor, labels: torch.Tensor,
                   budget) -> list[str]:
    """README lines saying the evaluation precision; in bf16 each intact net is evaluated in
    fp32 too, and the two (loss, error) stated side by side: the evidence that bf16 changes
    nothing the analysis concludes, measured on the very nets it analyses."""
    if budget.precision == FP32:
        return ["- Evaluated in fp32."]
    lines = [f"- Evaluated in bf16 autocast (fp32 weights, loss from fp32 logits). The check, "
             f"on the same {len(labels)} images, each intact net in fp32 against bf16:"]
    for name, net in tqdm(nets.items(), desc="intact nets, fp32 against bf16", leave=False):
        fp32, bf16 = (evaluate(net, images, labels, budget.eval_batch_size, precision)
                      for precision in (FP32, BF16))
        lines.append(f"  - {name}: loss {fp32[0]:.4f} against {bf16[0]:.4f} (relative "
                     f"{abs(bf16[0] - fp32[0]) / fp32[0]:.1%}), error {fp32[1]:.2f} against "
                     f"{bf16[1]:.2f} %.")
    return lines


def save_csv(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


#: The folder, in an analysis's results folder, that keeps what it measured on each net.
PER_NET = "per_net"


def measured_per_net(context: Context, runs: list[Run],
                     measure: Callable[[Run], dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """The tables ``measure`` makes of each run's net, concatenated over the runs. Each net's
    tables are kept in ``per_net/`` of the results folder with a record of the budget, commit,
    machine and minutes they took, and taken from there by a later call with the same budget:
    an analysis stopped halfway, or rerun with one more net, measures only what it has not."""
    parts: dict[str, list[pd.DataFrame]] = {}
    for run in runs:
        for name, frame in kept_or_measured(context, run, measure).items():
            parts.setdefault(name, []).append(frame)
    return {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}


def measuring_code(measure: Callable) -> str:
    """A hash of the code that measures a net: every function and class of this package that
    ``measure`` reaches by name (``reached_code``) and the models package whole (nets are built
    from their configs, not named). What measures decides the key, so an edit to a README line
    beside it does not make hours of measurements stale."""
    digest = hashlib.sha256()
    for source in reached_code(measure):
        digest.update(source.encode())
    for path in sorted(Path(inspect.getfile(CifarResNet)).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def is_constant(value) -> bool:
    """Whether ``repr(value)`` is the whole of it: numbers, strings, and containers of them."""
    if isinstance(value, (bool, int, float, str, bytes, type(None))):
        return True
    if isinstance(value, dict):
        return all(map(is_constant, [*value.keys(), *value.values()]))
    return isinstance(value, (tuple, list, frozenset)) and all(map(is_constant, value))


def reached_code(start: Callable) -> list[str]:
    """The source of ``start`` (a function, a class, a callable's class or a ``functools.partial``
    of one) and of every function and class of this package its code names as a global,
    followed on through theirs, and ``name = value`` of the constants they read; in a fixed
    order."""
    package = __name__.split(".")[0]
    start = start.func if isinstance(start, functools.partial) else start
    code: dict[str, str] = {}
    pending = [start if inspect.isfunction(start) or inspect.isclass(start) else type(start)]
    while pending:
        item = inspect.unwrap(pending.pop())
        name = f"{item.__module__}.{item.__qualname__}"
        if name in code:
            continue
        defaults = getattr(item, "__defaults__", None)
        code[name] = inspect.getsource(item) + (f"defaults = {defaults!r}"
                                                if is_constant(defaults) else "")
        for global_name, value in _globals_named(item):
            if is_constant(value):
                code[f"{item.__module__}.{global_name}"] = f"{global_name} = {value!r}"
            elif (inspect.isfunction(inspect.unwrap(value)) or inspect.isclass(value)) and \
                    str(getattr(value, "__module__", "")).startswith(package):
                pending.append(value)
    return [code[name] for name in sorted(code)]


def _globals_named(item) -> list[tuple[str, object]]:
    """(name, value) of each global that a function's code, or a class's methods, names."""
    functions = [item] if inspect.isfunction(item) else [
        inspect.unwrap(getattr(member, "fget", None) or getattr(member, "__func__", member))
        for member in vars(item).values()]
    found = []
    for function in filter(inspect.isfunction, functions):
        codes = [function.__code__]
        while codes:
            current = codes.pop()
            codes += [c for c in current.co_consts if inspect.iscode(c)]
            found += [(n, function.__globals__[n]) for n in current.co_names
                      if n in function.__globals__]
    return found


def kept_or_measured(context: Context, run: Run,
                     measure: Callable[[Run], dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """One net's tables, as read back from ``per_net/`` (measured first where no record there
    has this budget and this measuring code). The record is written last, so a crash leaves
    no half-kept net."""
    folder = context.out_dir / PER_NET
    record_path = folder / f"{run.name}.json"
    key = {"budget": OmegaConf.to_container(context.budget, resolve=True),
           "measuring_code": measuring_code(measure)}
    kept = json.loads(record_path.read_text()) if record_path.exists() else {}
    if any(kept.get(name) != value for name, value in key.items()):
        started = time.perf_counter()
        tables = measure(run)
        for name, frame in tables.items():
            save_csv(frame, folder / f"{run.name}.{name}.csv")
        record_path.write_text(json.dumps({
            "net": run.net, **key, "tables": list(tables),
            "minutes": round((time.perf_counter() - started) / 60, 2),
            "date": time.strftime("%Y-%m-%d"), "code": git_commit(), "hardware": hardware(),
        }, indent=1) + "\n")
        context.measured_now.append(run.name)
    else:
        context.read_back.append(run.name)
    record = json.loads(record_path.read_text())
    return {name: pd.read_csv(folder / f"{run.name}.{name}.csv") for name in record["tables"]}


def per_net_note(context: Context, runs: list[Run]) -> list[str]:
    """README lines saying what each net's measurement cost, when, where and at which commit."""
    lines = [f"- Measured net by net, each kept in [{PER_NET}/]({PER_NET}/) (a rerun with this "
             "budget measures only the nets not kept there):"]
    labels = run_labels(runs)
    for run in runs:
        record = json.loads((context.out_dir / PER_NET / f"{run.name}.json").read_text())
        code = record["code"]
        lines.append(f"  - {labels[run.name]}: {record['minutes']:.1f} min on "
                     f"{hardware_of(record['hardware'])}, {record['date']}, commit "
                     f"{code['commit'][:10]}{' (dirty)' if code['dirty'] else ''}.")
    return lines


def write_readme(context: Context, title: str, runs: list[Run], measured: list[str],
                 findings: list[str], figures: list[str]) -> Path:
    """README.md of an analysis of trained nets: how to redo it, which runs (with their own
    test errors), the profile and the analysis budget, what was measured, what it shows, the
    figures."""
    description = context.protocol + context.budget_note
    lines = [
        f"# {title}", "",
        "Written by the analysis of the nets below. Redo with:", "",
        f"    {context.command}", "",
        "## The trained nets", "",
        cost_line(context),
        *(f"- {describe(run)}: test error {final_test_error(run):.2f} %" for run in runs),
        *partial_grid_note(context.left_out),
        *unfinished_note(context.runs),
        *(["- Their profile, as its config (conf/protocol/) describes it:", "",
           *(f"  > {line}" if line else "  >" for line in description)] if description else []),
        "", "## What was measured", "", *measured,
        "", "## What it shows", "", *findings, "",
        *(f"![{name}]({name})" for name in figures), "",
        *findings_of_short_runs(context),
    ]
    path = context.out_dir / "README.md"
    path.write_text("\n".join(lines))
    return path


def cost_line(context: Context) -> str:
    """What the analysis cost: this call's minutes where it measured anything; where it read
    every net back from ``per_net/``, only that (each net's measured minutes are in its
    per-net line), so that a redraw leaves the README as it was."""
    if context.read_back and not context.measured_now:
        return (f"- Every net read back from [{PER_NET}/]({PER_NET}/), as measured before "
                "(minutes, machine and commit of each in the lines below); nothing measured "
                "again.")
    read_back = (f"; {len(context.read_back)} of the nets read back from {PER_NET}/"
                 if context.read_back else "")
    return (f"- The analysis ran on {hardware_of(hardware())} in {context.minutes:.1f} min of "
            f"wall-clock time (with anything else the machine ran meanwhile){read_back}.")


def unfinished_note(runs: list[Run]) -> list[str]:
    """The README line naming the sweep's runs that have not finished, which an analysis of
    trained nets leaves out (none where every run finished)."""
    unfinished = [f"{run.net or 'a run not started'} (run {run.name}, "
                  f"{run.iterations or 0} of {run.max_steps or '?'} iterations)"
                  for run in runs if not run.done]
    if not unfinished:
        return []
    return [f"- Not finished training, so left out of the analysis: {', '.join(unfinished)}."]


#: The profile of short runs whose findings a paper-profile analysis sets beside its own.
SHORT_PROFILE = "cpu"


def findings_of_short_runs(context: Context) -> list[str]:
    """At the paper profile, the same analysis's findings on the short cpu-profile nets, quoted
    from their committed README (``results/<analysis>/cpu/README.md``), to set what holds at
    convergence beside what the 1,200-iteration nets showed; nothing elsewhere."""
    readme = context.out_dir.parent / SHORT_PROFILE / "README.md"
    if context.short_schedule or not readme.exists():
        return []
    return [f"## The same analysis on the `{SHORT_PROFILE}` profile's nets", "",
            f"Quoted from [../{SHORT_PROFILE}/README.md](../{SHORT_PROFILE}/README.md) (nets "
            "trained for 1,200 iterations, far from converged):", "",
            *(f"> {line}" if line else ">" for line in shown_findings(readme.read_text())), ""]


def shown_findings(readme: str) -> list[str]:
    """The findings of an analysis README: its "What it shows" section up to the first
    blank line (the measured bullets; the comparisons with the literature follow it)."""
    lines = readme.split("## What it shows\n\n", 1)[1].splitlines()
    return lines[:lines.index("")] if "" in lines else lines


def final_test_error(run: Run) -> float:
    return final_error(curves_of(run.metrics()), "test", run.max_steps)
