"""The identity construction (section 1): a deeper net built from a trained shallower one plus
layers that compute the identity has exactly the shallower net's error, so a solution at least
as good exists at the greater depth; where the trained deeper net errs more, SGD did not find
it: an optimization failure, not a limit of capacity.

For each family (plain, ResNet): the trained shallow net, the trained deep net (from scratch)
and the constructed deep net (``models.surgery.deepen``), evaluated alike (BN with its stored
statistics, no augmentation); then the constructed plain net trained further at the profile's
schedule (the run that ``experiment=identity`` trains), where the analysis budget asks for it
(``identity_further_training``: hours of CPU at the paper's schedule).
"""

from __future__ import annotations

import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from resnet_repro.analysis.nets import dataset, evaluate, precision_note, save_csv, write_readme
from resnet_repro.analysis.plots import plt, save_figure
from resnet_repro.models.surgery import deepen
from resnet_repro.runs import Run, curves_of, run_directory

FAMILIES = {"plain": None, "ResNet": "A"}
FURTHER = ("plain", "constructed, trained further")


def variant(config: DictConfig, shortcut: str | None, depth: int, init=None) -> DictConfig:
    """``config`` with another net and starting point (the rest of the protocol unchanged)."""
    variant = config.copy()
    with open_dict(variant):
        variant.model.shortcut, variant.model.depth, variant.init = shortcut, depth, init
    return variant


def runs_needed(config: DictConfig, fingerprint: str) -> dict[tuple[str, str], Run]:
    """(family, role) -> finished run: the shallow and deep nets of each family from scratch,
    and the constructed plain net trained further (``config`` itself) where the budget asks."""
    shallow, deep = config.analysis.shallow_depth, config.analysis.deep_depth
    wanted = {(family, role): variant(config, shortcut, depth)
              for family, shortcut in FAMILIES.items()
              for role, depth in (("shallow", shallow), ("deep", deep))}
    if config.analysis.budget.identity_further_training:
        wanted[FURTHER] = config
    found = {}
    for key, wanted_config in wanted.items():
        run = Run.read(run_directory(wanted_config, fingerprint))
        if not run.done:
            raise SystemExit(
                f"the {key[0]} {key[1]} run ({wanted_config.model.depth} layers) has not "
                f"finished: train it first (make reproduce-fig6 and make reproduce-identity at "
                f"profile {config.profile_name})")
        found[key] = run
    return found


def measure(splits: dict, config: DictConfig, runs: dict, budget
            ) -> tuple[pd.DataFrame, dict]:
    """Training and test error (and loss) of every net on ``splits`` (name: Sample), and each
    constructed net's largest logit difference from its shallow net."""
    nets = {}
    for family in FAMILIES:
        shallow = runs[(family, "shallow")].load_net()
        nets[(family, f"trained {shallow.name}")] = shallow
        nets[(family, f"trained {runs[(family, 'deep')].net}, from scratch")] = \
            runs[(family, "deep")].load_net()
        nets[(family, f"{shallow.name} + identity layers = {config.analysis.deep_depth}")] = \
            deepen(shallow, config.analysis.deep_depth).eval()
    if FURTHER in runs:
        nets[("plain", f"constructed, trained {runs[FURTHER].iterations} iterations more")] = \
            runs[FURTHER].load_net()
    rows, differences = [], {}
    for (family, what), net in nets.items():
        row = {"family": family, "net": what}
        for split, (images, labels, _) in splits.items():
            row[f"{split}_loss"], row[f"{split}_error"] = evaluate(
                net, images, labels, budget.eval_batch_size, budget.precision)
        rows.append(row)
    for family in FAMILIES:
        shallow = runs[(family, "shallow")].load_net()
        constructed = deepen(shallow, config.analysis.deep_depth).eval()
        with torch.inference_mode():
            images = splits["test"].images
            differences[family] = float((constructed(images) - shallow(images)).abs().max())
    return pd.DataFrame(rows), differences


def plot_identity(table: pd.DataFrame, further: pd.DataFrame, title: str):
    """Bars: training and test error of every net, by family; then the further training of
    the constructed plain net, its logged training error against iterations."""
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for axis, split in zip(axes[:2], ("train", "test"), strict=True):
        colours = ["tab:red" if family == "plain" else "tab:blue" for family in table["family"]]
        axis.barh(range(len(table)), table[f"{split}_error"], color=colours)
        axis.set_yticks(range(len(table)), [f"{f}: {n}" for f, n in
                                            zip(table["family"], table["net"], strict=True)],
                        fontsize="small")
        axis.invert_yaxis()
        axis.set_xlabel(f"{split} error (%)")
        for index, value in enumerate(table[f"{split}_error"]):
            axis.text(value, index, f" {value:.1f}", va="center", fontsize="small")
    axes[1].set_yticks([])
    for label, curve in further.groupby("label", sort=False):
        axes[2].plot(curve["iteration"], curve["error"], label=label)
    axes[2].set_xlabel("iterations")
    axes[2].set_ylabel("training error (%), logged windows")
    axes[2].legend(fontsize="small")
    axes[2].grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def training_curves(runs: dict) -> pd.DataFrame:
    """The logged training error of the constructed plain net trained further, of the deep
    plain net trained from scratch, and of the shallow plain net it was built from."""
    frames = []
    for key, label in ((FURTHER, "constructed, trained on"),
                       (("plain", "deep"), "from scratch"),
                       (("plain", "shallow"), "(the net it was built from)")):
        if key not in runs:
            continue
        curves = curves_of(runs[key].metrics())
        frames.append(curves[curves["split"] == "train"].assign(
            label=f"{runs[key].net} {label}"))
    return pd.concat(frames, ignore_index=True)


def run(context) -> dict:
    config, budget = context.config, context.budget
    fingerprint = instantiate(config.data, seed=config.seed).fingerprint
    runs = runs_needed(config, fingerprint)
    splits = {"train": dataset(config, "train", budget.identity_train_images),
              "test": dataset(config, "test")}
    table, differences = measure(splits, config, runs, budget)
    curves = training_curves(runs)
    written = {"csv": save_csv(table.round(4), context.out_dir / "identity.csv"),
               "curves": save_csv(curves, context.out_dir / "further_training.csv")}
    figure = plot_identity(table, curves, context.title("The identity construction"))
    written["png"], written["pdf"] = save_figure(figure, context.out_dir / "identity")
    trained = {run.net: run.load_net() for run in runs.values()}
    measured = measured_lines(splits) + precision_note(
        trained, splits["test"].images, splits["test"].labels, budget)
    written["readme"] = write_readme(
        context, context.title("The identity construction"), list(runs.values()),
        measured, findings(table, differences, curves), ["identity.png"])
    return written


def measured_lines(splits: dict) -> list[str]:
    return [
        "- " + " ".join(__doc__.strip().splitlines()[5:]),
        f"- Training error on {splits['train'].words}, test error on {splits['test'].words}, "
        "both in evaluation mode without "
        "augmentation (so the training errors differ from the ones logged during training, "
        "which average augmented batches in training mode).",
        "- The constructed blocks compute the identity in evaluation mode only: in training "
        "mode BN normalizes with each batch's statistics, so from the first step of further "
        "training the added layers are no longer the identity.",
    ]


def findings(table: pd.DataFrame, differences: dict, curves: pd.DataFrame) -> list[str]:
    lines = []
    for family, rows in table.groupby("family", sort=False):
        shallow, deep, constructed = rows.iloc[0], rows.iloc[1], rows.iloc[2]
        lines.append(
            f"- {family}: the constructed net's logits differ from the shallow net's by at most "
            f"{differences[family]:.2g} on the test set; its errors are the shallow net's "
            f"({constructed.train_error:.2f} / {constructed.test_error:.2f} % training / test "
            f"against {shallow.train_error:.2f} / {shallow.test_error:.2f} %), where the deep net "
            f"trained from scratch errs {deep.train_error:.2f} / {deep.test_error:.2f} %: "
            + ("a solution better than SGD's exists at that depth."
               if deep.train_error > constructed.train_error else
               "SGD found a solution at least as good as the constructed one."))
    lines.append(further_training_line(table, curves))
    return lines


def further_training_line(table: pd.DataFrame, curves: pd.DataFrame) -> str:
    trained_on = table[table["net"].str.startswith("constructed, trained")]
    if trained_on.empty:
        return ("- The constructed plain net was not trained further: the analysis budget "
                "leaves that run out (identity_further_training; at the paper's schedule it is "
                "hours of CPU).")
    further = trained_on.iloc[0]
    start = curves[curves["label"].str.contains("constructed")].sort_values("iteration")
    return (f"- The constructed plain net trained further: logged training error "
            f"{start['error'].iloc[0]:.1f} % after the first window and "
            f"{start['error'].iloc[-1]:.1f} % at the end; evaluated as above "
            f"{further.train_error:.2f} / {further.test_error:.2f} % training / test error.")
