"""results/README.md: the index of what results/ holds, rewritten after every analysis from the
folders themselves (never by hand), so that it cannot fall behind them."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from resnet_repro.analysis.nets import PER_NET

#: Profiles whose results are committed (smoke's are CI's, and ignored by git).
COMMITTED_PROFILES = ("paper", "cpu")
#: Folders of results/ that hold no analysis.
NOT_ANALYSES = ("runs", "bench")

HEAD = """# Results

Every folder here was written by `experiments/analyze.py` (or `make bench`) from real runs; each
has its own README with the command that redoes it, the runs behind it (commit, data copy,
hardware, wall time) and what it shows. The runs themselves (record, config, metrics, final
weights) are in `runs/<profile>/<key>/`, so the analyses redo every figure without training.
This index is rewritten by every analysis (`resnet_repro/analysis/index.py`) from the folders.
"""


def what(experiment: str, conf: Path, readme: Path) -> str:
    """The first sentence of the experiment config's head comment (the README's title where
    there is no config)."""
    path = conf / "experiment" / f"{experiment}.yaml"
    if not path.exists():
        return readme.read_text().splitlines()[0].lstrip("# ")
    comment = []
    for line in path.read_text().splitlines()[1:]:
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("# ").strip())
    text = " ".join(comment)
    return re.split(r"(?<=[a-z0-9)]\.)\s+(?=[A-Z])", text, maxsplit=1)[0]


def contents(folder: Path) -> str:
    """How many runs a sweep's folder shows (finished of all), or nets an analysis measured (a
    net measured on several seeds counted, as "plain-20 ×3")."""
    summary = folder / "summary.csv"
    if summary.exists():
        status = pd.read_csv(summary)["status"]
        return f"{(status == 'done').sum()} of {len(status)} runs finished"
    kept = sorted((folder / PER_NET).glob("*.json"))
    if kept:
        nets = Counter(json.loads(path.read_text())["net"] for path in kept)
        named = (name if count == 1 else f"{name} ×{count}" for name, count in sorted(nets.items()))
        return f"{nets.total()} net{'s' * (nets.total() != 1)}: {', '.join(named)}"
    return "-"


def rows(results: Path, conf: Path) -> list[str]:
    lines = ["| folder | what | profile | contents |", "|---|---|---|---|"]
    for readme in sorted(results.glob("*/README.md")):
        name = readme.parent.name
        lines.append(f"| [{name}]({name}/) | {what(name, conf, readme)} | - | - |")
    for profile in COMMITTED_PROFILES:
        for readme in sorted(results.glob(f"*/{profile}/README.md")):
            folder = readme.parent
            name = folder.parent.name
            if name in NOT_ANALYSES:
                continue
            lines.append(f"| [{name}/{profile}]({name}/{profile}/) | {what(name, conf, readme)} | "
                         f"{profile} | {contents(folder)} |")
    if (results / "bench").is_dir():
        lines.append("| [bench](bench/) | throughput measurements (`make bench`, "
                     "`experiments/bench_loader.py`) | - | see each file |")
    return lines


def write_index(results: Path, conf: Path) -> Path:
    paper = sorted(p.parent.parent.name for p in results.glob("*/paper/README.md"))
    lines = [HEAD, *rows(results, conf), "",
             f"At the paper's schedule (64,000 iterations): {', '.join(paper)}."
             if paper else "No result at the paper's schedule (64,000 iterations) yet.",
             "`make verify` judges the paper's claims on whatever profiles are here.", ""]
    path = results / "README.md"
    path.write_text("\n".join(lines))
    return path
