"""Flow files and images: numpy and OpenCV only (never the model, click or rich).

``read_flow``/``write_flow`` handle .flo, KITTI PNG, PFM, .npy and .npz; ``read_image``/``write_image``
handle pictures in one HxWx3 uint8 RGB form; ``atomic_path`` makes any output appear all at once.
"""
from flowcli.io.atomic import atomic_path
from flowcli.io.flow import FLOW_EXTENSIONS, read_flow, write_flow
from flowcli.io.image import IMAGE_EXTENSIONS, as_rgb8, read_image, write_image

__all__ = [
    "FLOW_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "as_rgb8",
    "atomic_path",
    "read_flow",
    "read_image",
    "write_flow",
    "write_image",
]
