"""resnet-repro: the figures and tables of He et al. 2015, "Deep Residual Learning",
from real runs."""


def __getattr__(name: str):
    """``resnet_repro.pretrained``, imported on first use (it brings Hydra and the runs)."""
    if name == "pretrained":
        from resnet_repro.hub import pretrained
        return pretrained
    raise AttributeError(f"module 'resnet_repro' has no attribute {name!r}")
