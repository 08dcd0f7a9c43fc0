"""Train one net, or a sweep of them with -m:

    python experiments/train.py model.depth=56 model.shortcut=null profile=cpu
    python experiments/train.py -m experiment=fig1 profile=cpu data.source=path/to/cifar10.tar.gz

In a sweep a failed or diverged run is recorded in its run.json and the others go on.
"""

import logging

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from resnet_repro.training.launch import RunFailed, train

log = logging.getLogger("train")


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s")
    try:
        train(cfg)
    except RunFailed as error:
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            raise
        log.error("%s; the sweep goes on", error)


if __name__ == "__main__":
    main()
