"""Figure 3's comparison: VGG-19 beside the 34-layer plain net and ResNet-34, counted.

The paper sets its 34-layer nets (3.6 billion multiply-adds, "only 18 % of VGG-19") beside
VGG-19 (19.6 billion). This recipe builds the three nets (VGG-19 by torchvision; plain-34 and
ResNet-34 by this suite, option A as in Figure 3's dotted shortcuts, and B) without memory on
the meta device, counts their multiply-adds for one 224 x 224 image, parameters and weighted
layers, and writes them beside the paper's numbers. Nothing is trained.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch import nn

from resnet_repro.models import ImageNetResNet, multiply_adds
from resnet_repro.models.vgg import vgg19

#: Figure 3 / section 3.3: multiply-adds (billions) of each net.
PAPER_BILLIONS = {"vgg-19": 19.6, "plain-34": 3.6, "resnet-34-A": 3.6, "resnet-34-B": 3.6}


def nets() -> dict[str, nn.Module]:
    with torch.device("meta"):
        return {"vgg-19": vgg19(), "plain-34": ImageNetResNet(34, None),
                "resnet-34-A": ImageNetResNet(34, "A"), "resnet-34-B": ImageNetResNet(34, "B")}


def weighted_layers(net: nn.Module) -> int:
    """Convolutions and fully connected layers, projection shortcuts left out (the paper counts
    34 layers for ResNet-34 whatever its shortcuts)."""
    return sum(isinstance(m, (nn.Conv2d, nn.Linear)) and "shortcut" not in name
               for name, m in net.named_modules())


def table() -> pd.DataFrame:
    rows = []
    for name, net in nets().items():
        count = multiply_adds(net)
        rows.append({"net": name, "weighted_layers": weighted_layers(net),
                     "params_millions": round(sum(p.numel() for p in net.parameters()) / 1e6, 2),
                     "multiply_adds_billions": round(count / 1e9, 2),
                     "paper_billions": PAPER_BILLIONS[name]})
    frame = pd.DataFrame(rows)
    vgg = frame.set_index("net").loc["vgg-19", "multiply_adds_billions"]
    frame["share_of_vgg19"] = (frame["multiply_adds_billions"] / vgg).round(3)
    return frame


def run(out_dir: Path, command: str) -> dict[str, Path]:
    """Write fig3.csv and README.md."""
    frame = table()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"csv": out_dir / "fig3.csv", "readme": out_dir / "README.md"}
    frame.to_csv(written["csv"], index=False)
    lines = ["# Figure 3: VGG-19, the 34-layer plain net and ResNet-34, counted", "",
             f"Redo with `{command}` (no data, no training).", "", __doc__.split("\n\n")[1]
             .replace("\n", " "), "",
             "| net | weighted layers | parameters | multiply-adds | paper | share of VGG-19 |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.net} | {r.weighted_layers} | {r.params_millions:.1f} M | "
              f"{r.multiply_adds_billions:.2f} billion | {r.paper_billions} billion | "
              f"{r.share_of_vgg19:.0%} |" for r in frame.itertuples()]
    lines += ["", "Multiply-adds of convolutions and fully connected layers (the paper's "
              "\"FLOPs\"); option A adds neither parameters nor multiply-adds, option B's "
              "projections a few.", ""]
    written["readme"].write_text("\n".join(lines))
    return written
