"""Collect a sweep's runs and write results/<experiment>/<profile>/.

    python experiments/analyze.py experiment=fig1 profile=cpu data.source=path/to/cifar10.tar.gz

Takes the same overrides as ``train.py -m``, finds each point's run directory by its config
hash, and writes curves.csv, summary.csv, <experiment>.png/.pdf and README.md.
"""

import argparse
import shlex
import sys
from pathlib import Path

from hydra.utils import get_class
from omegaconf import OmegaConf

from resnet_repro.analysis import gradients, identity, landscape, lesion, precision
from resnet_repro.analysis.collect import summarize
from resnet_repro.analysis.nets import Context, dataset
from resnet_repro.analysis.report import write_results
from resnet_repro.analysis.responses import responses
from resnet_repro.analysis.sweep import sweep_choices, sweep_configs, sweep_run_directories
from resnet_repro.config import budget_description, protocol_description

#: Analyses of trained nets: each writes its own figures, tables and README.
NET_ANALYSES = {"gradients": gradients.run, "identity": identity.run, "lesion": lesion.run,
                "landscape": landscape.run, "precision": precision.run}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as given to train.py -m")
    parser.add_argument("--command", help="the command to print as the way to redo the results")
    args = parser.parse_args(argv)
    config = sweep_configs(args.overrides)[0]
    experiment = config.experiment_name or "runs"
    directories = sweep_run_directories(args.overrides)
    curves, summary = summarize(directories)
    if curves.empty:
        sys.exit(f"no finished runs for {args.overrides}; train them first: "
                 f"python experiments/train.py -m {shlex.join(args.overrides)}")
    out_dir = Path(config.paths.results) / experiment / config.profile_name
    command = args.command or f"python experiments/analyze.py {shlex.join(args.overrides)}"
    analysis = OmegaConf.to_container(config.analysis, resolve=True)
    analysis["dataset"] = get_class(config.data._target_).title
    choices = sweep_choices(args.overrides)
    analysis["protocol"] = protocol_description(choices["protocol"])
    if analysis["figure"] in NET_ANALYSES:
        budget = budget_description(choices["analysis_budget"], config.analysis.budget) \
            if choices.get("analysis_budget") else []
        context = Context(config, directories, out_dir, command, analysis["protocol"] + budget)
        written = NET_ANALYSES[analysis["figure"]](context)
        print("wrote", ", ".join(str(path) for path in written.values()))
        return 0
    layer_responses = None
    if analysis["figure"] == "layer_responses":
        layer_responses = responses(directories, dataset(config, "test")[0])
    written = write_results(experiment, config.profile_name, analysis, curves, summary, out_dir,
                            command, layer_responses)
    errors = [c for c in ("test_error", "val_error", "top1_10crop") if summary[c].notna().any()]
    print(summary[["net", "seed", "status", "train_error", *errors, "wall_seconds"]]
          .to_string(index=False))
    print("wrote", ", ".join(str(path) for path in written.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
