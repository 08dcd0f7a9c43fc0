"""Training: the LightningModule, the schedule, and the run directories."""

from resnet_repro.training.module import DivergedError, ImageClassifier
from resnet_repro.training.schedule import PlateauSchedule, StepSchedule

__all__ = ["DivergedError", "ImageClassifier", "PlateauSchedule", "StepSchedule"]
