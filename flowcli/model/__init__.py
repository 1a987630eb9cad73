"""The LiteFlowNet network and its primitives (imports torch only)."""
from .correlation import correlation, correlation_reference, correlation_matmul
from .levels import LEVELS, LOSS_WEIGHTS, LevelSpec
from .liteflownet import FLOW_SCALE, LiteFlowNet, build_liteflownet
from .warp import backward_warp

__all__ = ["LiteFlowNet", "build_liteflownet", "LEVELS", "LevelSpec", "LOSS_WEIGHTS", "FLOW_SCALE",
           "correlation", "correlation_reference", "correlation_matmul", "backward_warp"]
