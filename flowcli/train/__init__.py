"""Training: the paper's loss and stage-wise schedule, checkpoints with exact resume, DDP under torchrun."""
from .config import Stage, TrainConfig, apply_overrides, default_run_dir, load_config
from .loop import ConfigMismatchError, TrainResult, export_weights, train

__all__ = ["Stage", "TrainConfig", "apply_overrides", "default_run_dir", "load_config", "ConfigMismatchError", "train", "TrainResult", "export_weights"]
