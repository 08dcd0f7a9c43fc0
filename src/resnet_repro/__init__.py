"""resnet-repro: the figures and tables of He et al. 2015, "Deep Residual Learning",
from real runs."""
