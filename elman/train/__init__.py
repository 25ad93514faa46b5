"""Task-agnostic training: the Trainer, its config, checkpoints, schedules, DDP helpers."""

from elman.train.checkpoint import CheckpointError, load_checkpoint, read_meta, save_checkpoint
from elman.train.config import TrainConfig
from elman.train.trainer import NonFiniteError, Task, Trainer, seed_everything

__all__ = [
    "CheckpointError",
    "NonFiniteError",
    "Task",
    "TrainConfig",
    "Trainer",
    "load_checkpoint",
    "read_meta",
    "save_checkpoint",
    "seed_everything",
]
