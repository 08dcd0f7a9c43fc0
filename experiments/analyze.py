"""Collect a sweep's runs and write results/<experiment>/<profile>/ with the experiment's recipe.

    python experiments/analyze.py experiment=fig1 profile=cpu data.source=path/to/cifar10.tar.gz

Takes the same overrides as ``train.py -m``, finds each point's run directory by its config
hash, and hands the runs to the experiment's recipe (``resnet_repro.analysis.recipes``).
"""

import argparse
import shlex
import sys
from pathlib import Path

from hydra.utils import get_class

from resnet_repro.analysis.context import Context
from resnet_repro.analysis.index import COMMITTED_PROFILES, write_index
from resnet_repro.analysis.recipes import recipe
from resnet_repro.config import budget_description, compose_train, protocol_description
from resnet_repro.sweeps import (
    left_out_of_grid,
    sweep_choices,
    sweep_configs,
    sweep_runs,
)

ROOT = Path(__file__).resolve().parents[1]

#: Overrides that the make command's own variables give (PROFILE, DATA) or its target names.
MAKE_VARIABLES = ("experiment", "profile", "data.source")


def redo_command(config, runs, overrides: list[str]) -> str:
    """The make command that redoes these results, written the same however they were redone
    (so a redraw leaves the README as it was): DATA is the copy the runs were trained on,
    given or not this time; ARGS the other overrides, as given."""
    sources = {run.data_source for run in runs if run.data_source}
    source = min(sources) if sources else config.data.source
    default = compose_train([]).data.source
    args = [o for o in overrides if o.split("=")[0].lstrip("+~") not in MAKE_VARIABLES]
    return (f"make reproduce-{config.experiment_name} PROFILE={config.profile_name}"
            + (f" DATA={source}" if source != default else "")
            + (f" ARGS={shlex.quote(' '.join(args))}" if args else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as given to train.py -m")
    args = parser.parse_args(argv)
    config = sweep_configs(args.overrides, excluded=True)[0]  # the sweep may train nothing
    runs = sweep_runs(args.overrides)
    if runs and all(run.status == "missing" for run in runs):
        sys.exit(f"no runs for {args.overrides}; train them first: "
                 f"python experiments/train.py -m {shlex.join(args.overrides)}")
    choices = sweep_choices(args.overrides)
    context = Context(
        config=config, runs=runs,
        out_dir=Path(config.paths.results) / (config.experiment_name or "runs")
        / config.profile_name,
        command=redo_command(config, runs, args.overrides),
        protocol=protocol_description(choices["protocol"]),
        budget_note=budget_description(choices["analysis_budget"], config.analysis.budget)
        if choices.get("analysis_budget") else [],
        dataset_title=get_class(config.data._target_).title,
        left_out=left_out_of_grid(args.overrides))
    written = recipe(config.experiment_name).run(context)
    if config.profile_name in COMMITTED_PROFILES:
        written["index"] = write_index(Path(config.paths.results), ROOT / "conf")
    if "summary" in written:
        _, summary = context.tables
        errors = [c for c in ("test_error", "val_error", "top1_10crop") if summary[c].notna().any()]
        print(summary[["net", "seed", "status", "train_error", *errors, "wall_seconds"]]
              .to_string(index=False))
    print("wrote", ", ".join(str(path) for path in written.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
