"""Human3.6M evaluation with the authors' protocol (docs/spec.md, "Evaluation protocol").

`annotations.load_samples` reads the annotation layout, `evaluate.evaluate_model` /
`evaluate_checkpoint` run a network over the test frames, `predictions.score_predictions_file`
scores predictions made elsewhere, `evaluate.evaluate_mpjpe(root, checkpoint)` gives the
protocol-2 MPJPE in mm, `metrics` the error measures. Names load lazily (numpy, torch).
"""
from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("ACTION_NAMES", "H36MDataError", "Sample", "annotation_dir", "load_samples"), "annotations"),
    **dict.fromkeys(("EvalResult", "evaluate_checkpoint", "evaluate_model", "evaluate_mpjpe", "predict", "score",
                     "to_camera"), "evaluate"),
    **dict.fromkeys(("camera_to_pixel", "heatmap_to_pixel", "normalise", "pixel_to_camera", "process_bbox",
                     "world_to_camera"), "geometry"),
    **dict.fromkeys(("crop_rgb", "network_input", "patch_transform", "read_bgr"), "images"),
    "default_workers": "loader",
    "score_predictions_file": "predictions",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
