"""Which run directories belong to a sweep: the analysis composes the same configs as
``experiments/train.py -m`` and finds each point's directory by the same config hash."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import DictConfig

from resnet_repro.config import compose_train, sweep_exclusion
from resnet_repro.runs import Run, family, run_directory


def _split(overrides: list[str]):
    parser = OverridesParser.create()
    parsed = parser.parse_overrides(overrides)
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    return parser, parsed, fixed


def fixed_overrides(overrides: list[str]) -> list[str]:
    """The overrides that are not grid axes (``seed=0``, not ``seed=0,1``)."""
    return _split(overrides)[2]


def sweep_choices(overrides: list[str]) -> dict:
    """The config group choices the sweep shares (data, profile, protocol, ...)."""
    _, _, fixed = _split(overrides)
    return dict(compose_train(fixed, return_hydra_config=True).hydra.runtime.choices)


def sweep_configs(overrides: list[str], excluded: bool = False) -> list[DictConfig]:
    """One composed config per point of the sweep that ``train.py -m <overrides>`` runs: the
    experiment's own grid (``hydra.sweeper.params``), with ``overrides`` taking precedence key
    by key, as in Hydra's basic sweeper: a comma list replaces the grid's axis, and a single
    value (``seed=0``) fixes it (Hydra then runs that one point per duplicate, which the run
    directories skip). Points that ``sweep.exclude`` leaves out are left out here too, unless
    ``excluded``."""
    parser, parsed, fixed = _split(overrides)
    sweeps = {o.get_key_element(): o for o in parsed if o.is_sweep_override()}
    grid = dict(compose_train(fixed, return_hydra_config=True).hydra.sweeper.params or {})
    fixed_keys = {o.get_key_element() for o in parsed if not o.is_sweep_override()}
    for override in parser.parse_overrides([f"{k}={v}" for k, v in grid.items()]):
        if override.get_key_element() not in fixed_keys:
            sweeps.setdefault(override.get_key_element(), override)
    axes = [_axis(override) for override in sweeps.values()]
    configs = [compose_train(fixed + list(point)) for point in itertools.product(*axes)]
    return [config for config in configs if excluded or sweep_exclusion(config) is None]


def _axis(override) -> list[str]:
    """The overrides of one grid axis; a grid key with a single value (``seed: "0"``) is an
    axis of one point, as Hydra's basic sweeper takes it."""
    key = override.get_key_element()
    if not override.is_sweep_override():
        return [f"{key}={override.get_value_element_as_str()}"]
    return [f"{key}={value}" for value in override.sweep_string_iterator()]


def sweep_runs(overrides: list[str]) -> list[Run]:
    """The run of every point of the sweep; one not started yet (status ``missing``) named by
    its point's config (net, seed, depth, family, length), so that it can be said so."""
    configs = sweep_configs(overrides)
    runs = []
    for config, directory in zip(configs, run_directories(configs), strict=True):
        run = Run.read(directory)
        if run.status == "missing":
            run = dataclasses.replace(
                run, net=net_name(config), seed=config.seed, depth=config.model.depth,
                family=family(config.model.get("shortcut")), max_steps=config.trainer.max_steps)
        runs.append(run)
    return runs


def sweep_run_directories(overrides: list[str]) -> list[Path]:
    """The run directory of every point of the sweep, whether it has run yet or not."""
    return run_directories(sweep_configs(overrides))


def run_directories(configs: list[DictConfig]) -> list[Path]:
    fingerprints = {}
    for config in configs:
        data = (config.data._target_, str(config.data.source))
        if data not in fingerprints:  # the data module's own: content or listing hash
            fingerprints[data] = instantiate(config.data, seed=config.seed).fingerprint
    return [run_directory(c, fingerprints[(c.data._target_, str(c.data.source))])
            for c in configs]


def net_name(config: DictConfig) -> str:
    """The net's own name (``plain-20``), built on the meta device (no memory)."""
    with torch.device("meta"):
        return instantiate(config.model).name


def left_out_of_grid(overrides: list[str]) -> list[str]:
    """The nets of the experiment's own grid (at its profile) that ``overrides`` leave out of
    this sweep (``model.depth=20,56`` narrows Figure 6's six depths to two), in the grid's
    order: what a results README must say it does not show."""
    _, parsed, fixed = _split(overrides)
    axes = set(compose_train(fixed, return_hydra_config=True).hydra.sweeper.params or {})
    whole = [o.input_line for o in parsed if o.get_key_element() not in axes]
    here = {net_name(config) for config in sweep_configs(overrides)}
    names = dict.fromkeys(net_name(config) for config in sweep_configs(whole))
    return [name for name in names if name not in here]
