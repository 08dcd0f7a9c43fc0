"""Composing the project's Hydra config outside ``@hydra.main`` (analysis, bench, tests)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def protocol_description(choice: str) -> list[str]:
    """The comment at the head of ``conf/protocol/<choice>.yaml``: what the profile means for
    that data set and how it differs from the paper."""
    return _head_comment(CONF_DIR / "protocol" / f"{choice}.yaml")


def budget_description(choice: str, budget: DictConfig) -> list[str]:
    """What an analysis of trained nets evaluated: ``conf/analysis_budget/<choice>.yaml``'s
    comment and its values."""
    values = ", ".join(f"{key} {value}" for key, value in budget.items())
    return ["", f"Analysis budget `{choice}` (conf/analysis_budget/{choice}.yaml, chosen apart "
            "from the training profile):",
            *_head_comment(CONF_DIR / "analysis_budget" / f"{choice}.yaml"), values]


def _head_comment(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    comments = [line.removeprefix("#").strip() for line in lines if line.startswith("#")]
    return [line for line in comments if not line.startswith("@package")]


def compose_train(overrides: list[str], return_hydra_config: bool = False) -> DictConfig:
    """``conf/train.yaml`` with ``overrides``, as ``experiments/train.py`` would compose it
    (also from inside it: there Hydra is initialized on the same configs already)."""
    if GlobalHydra.instance().is_initialized():
        return compose("train", overrides=overrides, return_hydra_config=return_hydra_config)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=return_hydra_config)


def sweep_exclusion(cfg: DictConfig) -> dict | None:
    """The rule of ``sweep.exclude`` that leaves this point out of its experiment's grid, or
    None. A rule maps config keys to a value or a list of values; a point matches a rule where
    every key's value is (one of) them. Hydra's grids are products: this trims them (Figure 6
    has no plain-1202, Table 6 five seeds for ResNet-110 only)."""
    for rule in cfg.get("sweep", {}).get("exclude") or []:
        if all(_matches(OmegaConf.select(cfg, key), wanted) for key, wanted in rule.items()):
            return OmegaConf.to_container(rule)
    return None


def _matches(value, wanted) -> bool:
    return value in wanted if OmegaConf.is_list(wanted) else value == wanted
