"""Training: the LightningModule, the schedules, the launcher (``launch.train``), clean stops
and fused training of several runs. The run folder itself belongs to ``resnet_repro.runs``."""

from resnet_repro.training.module import DivergedError, ImageClassifier
from resnet_repro.training.schedule import PlateauSchedule, StepSchedule

__all__ = ["DivergedError", "ImageClassifier", "PlateauSchedule", "StepSchedule"]
