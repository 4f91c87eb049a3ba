"""Human3.6M evaluation with the authors' protocol (SPEC §6).

`load_samples` reads the annotation layout, `evaluate_model` / `evaluate_checkpoint` run a
network over the test frames, `score_predictions_file` scores predictions made elsewhere,
`evaluate_mpjpe(root, checkpoint)` gives the protocol-2 MPJPE in mm.
"""
from .annotations import ACTION_NAMES, H36MDataError, Sample, annotation_dir, load_samples
from .evaluate import EvalResult, evaluate_checkpoint, evaluate_model, evaluate_mpjpe, predict, score, to_camera
from .geometry import (camera_to_pixel, heatmap_to_pixel, normalise, pixel_to_camera, process_bbox,
                       world_to_camera)
from .images import crop_rgb, network_input, patch_transform, read_bgr
from .loader import default_workers
from .predictions import score_predictions_file

__all__ = ["ACTION_NAMES", "H36MDataError", "Sample", "annotation_dir", "load_samples", "EvalResult",
           "evaluate_checkpoint", "evaluate_model", "evaluate_mpjpe", "predict", "score", "to_camera",
           "camera_to_pixel", "heatmap_to_pixel", "normalise", "pixel_to_camera", "process_bbox", "world_to_camera",
           "crop_rgb", "network_input", "patch_transform", "read_bgr", "default_workers", "score_predictions_file"]
