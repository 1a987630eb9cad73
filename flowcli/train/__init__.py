"""Training: the paper's loss and stage-wise schedule, checkpoints with exact resume, DDP under torchrun."""
from .config import Stage, TrainConfig, apply_overrides, load_config
from .loop import TrainResult, export_weights, train

__all__ = ["Stage", "TrainConfig", "apply_overrides", "load_config", "train", "TrainResult", "export_weights"]
