"""torch.hub entry point for the trained nets of a clone:

    net = torch.hub.load("path/to/resnet-repro", "pretrained", "resnet-56", profile="cpu",
                         source="local")
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from resnet_repro.hub import pretrained  # noqa: E402

dependencies = ["torch", "hydra", "omegaconf", "pandas"]
__all__ = ["pretrained"]
