"""Human3.6M evaluation with the authors' protocol (SPEC §6).

`load_samples` reads the annotation layout, `evaluate_model` / `evaluate_checkpoint` run a
network over the test frames, `score_predictions_file` scores predictions made elsewhere,
`evaluate_mpjpe(root, checkpoint)` gives the protocol-2 MPJPE in mm.
"""
from .annotations import ACTION_NAMES, H36MDataError, Sample, annotation_dir, load_samples
from .evaluate import EvalResult, crop, evaluate_checkpoint, evaluate_model, evaluate_mpjpe, predict, score, to_camera
from .geometry import (heatmap_to_pixel, normalise, patch_transform, pixel_to_camera, process_bbox, warp_affine,
                       world_to_camera, camera_to_pixel)
from .predictions import score_predictions_file

__all__ = ["ACTION_NAMES", "H36MDataError", "Sample", "annotation_dir", "load_samples", "EvalResult", "crop",
           "evaluate_checkpoint", "evaluate_model", "evaluate_mpjpe", "predict", "score", "to_camera", "heatmap_to_pixel", "normalise",
           "patch_transform", "pixel_to_camera", "process_bbox", "warp_affine", "world_to_camera",
           "camera_to_pixel", "score_predictions_file"]
