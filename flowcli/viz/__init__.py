"""Pictures of flow: Middlebury color coding, warped previews, error maps and occlusion masks.

numpy and OpenCV only (never the model, click or rich).
"""
from flowcli.viz.color import color_wheel_legend, flow_to_color, make_colorwheel
from flowcli.viz.occlusion import fb_consistency, occlusion_mask
from flowcli.viz.panels import epe_map, error_to_color, make_panel
from flowcli.viz.warping import check_flow, photometric_error, warp_image

__all__ = [
    "check_flow",
    "color_wheel_legend",
    "epe_map",
    "error_to_color",
    "fb_consistency",
    "flow_to_color",
    "make_colorwheel",
    "make_panel",
    "occlusion_mask",
    "photometric_error",
    "warp_image",
]
