"""Training: the LightningModule, the schedule, and the run directories."""

from resnet_repro.training.module import DivergedError, ImageClassifier
from resnet_repro.training.schedule import StepSchedule

__all__ = ["DivergedError", "ImageClassifier", "StepSchedule"]
