"""Post-processing of flow fields, independent of the model: fusion of candidates and refinement.

An inference recipe chains them after the network: the flows estimated at several input scales are
fused per pixel by a census matching cost (:func:`fuse_candidates`), then refined by OpenCV's
variational method (:func:`variational_refine`).

numpy and OpenCV only (never torch, the model, click or rich).
"""
from flowcli.postprocess.fusion import census_cost, census_offsets, census_transform, fuse_candidates
from flowcli.postprocess.refine import variational_refine

__all__ = [
    "census_cost",
    "census_offsets",
    "census_transform",
    "fuse_candidates",
    "variational_refine",
]
