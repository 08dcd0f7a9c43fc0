"""Sharing a batch among DDP processes: ``batch_size`` in the data configs is the total over all
devices and nodes (the paper's 128 on CIFAR-10, 256 on ImageNet), each process loads its share."""

from __future__ import annotations


def rank_and_world_size(trainer) -> tuple[int, int]:
    """This process's rank and the number of processes (0 and 1 without a trainer)."""
    if trainer is None:
        return 0, 1
    return trainer.global_rank, trainer.world_size


def batch_share(batch_size: int, world_size: int) -> int:
    """Each process's part of a total ``batch_size``; a clear error where it does not split."""
    if batch_size % world_size:
        raise ValueError(f"data.batch_size={batch_size} (the total over all devices) does not "
                         f"split evenly over {world_size} processes")
    return batch_size // world_size
