"""Run the authors' own Human3.6M code on a generated dataset and print what it computes (JSON).

    python tests/authors_h36m_oracle.py AUTHORS_CHECKOUT DATASET_ROOT WORK_DIR PROTOCOL PREDS.npy [--rootnet]

Used by tests/test_h36m_authors.py in a subprocess (their module names -- `config`, `utils`,
`dataset` -- would collide with anything else in one interpreter). Nothing of theirs is
copied: their files are imported from the checkout; only what they import and is absent
here is stood in for, in this process: their global `cfg` (the values their config sets for
this evaluation), pycocotools' `COCO` (the three members their loader uses), and their
plotting module `utils.vis` (never called on this path). Their `Human36M` hard-codes
protocol 2 before loading; a subclass pins `protocol` to the one asked for.

Prints, per test frame in their order: image id, their box, root, ground truth, their
normalised network input's SHA-256 (their `DatasetLoader` with ToTensor + Normalize, which
is torchvision's arithmetic), and the result of their `evaluate` on PREDS (heatmap units,
in their frame order): the per-frame errors recomputed from the poses they save.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    authors, root, work, protocol, preds_path = sys.argv[1:6]
    rootnet = "--rootnet" in sys.argv[6:]
    protocol = int(protocol)
    preds = np.load(preds_path)
    depth, height, width = (int(v) for v in os.environ["ORACLE_HEATMAP"].split(","))
    cfg = types.SimpleNamespace(input_shape=(256, 256), output_shape=(height, width), depth_dim=depth,
                                bbox_3d_shape=(2000, 2000, 2000), pixel_mean=(0.485, 0.456, 0.406),
                                pixel_std=(0.229, 0.224, 0.225), use_gt_info=not rootnet)
    sys.modules["config"] = types.SimpleNamespace(cfg=cfg)
    vis = types.ModuleType("utils.vis")
    vis.vis_keypoints = vis.vis_3d_skeleton = None
    sys.modules["utils.vis"] = vis

    class COCO:
        def __init__(self):
            self.dataset, self.anns, self.imgs = {}, {}, {}

        def createIndex(self):
            self.anns = {a["id"]: a for a in self.dataset.get("annotations", [])}
            self.imgs = {i["id"]: i for i in self.dataset.get("images", [])}

        def loadImgs(self, ids):
            return [self.imgs[ids]]

    coco = types.ModuleType("pycocotools.coco")
    coco.COCO = COCO
    sys.modules["pycocotools"], sys.modules["pycocotools.coco"] = types.ModuleType("pycocotools"), coco
    a = Path(authors)
    sys.path[:0] = [str(a / "common"), str(a / "data"), str(a / "data" / "Human36M")]
    import utils  # their common/utils package

    utils.vis = vis
    import dataset as their_dataset
    from Human36M import Human36M

    # their paths are '../data/Human36M/...': a work folder with main/ and data/Human36M -> root
    work = Path(work)
    (work / "main").mkdir(parents=True, exist_ok=True)
    (work / "data").mkdir(exist_ok=True)
    link = work / "data" / "Human36M"
    if not link.exists():
        link.symlink_to(Path(root).resolve())
    os.chdir(work / "main")

    class Pinned(Human36M):
        protocol = property(lambda self: protocol, lambda self, value: None)

    db = Pinned("test")

    def to_tensor_normalize(img):  # torchvision ToTensor (float array: no scaling) + Normalize
        t = torch.from_numpy(img.transpose((2, 0, 1))).contiguous()
        return t.sub_(torch.tensor(cfg.pixel_mean).view(3, 1, 1)).div_(torch.tensor(cfg.pixel_std).view(3, 1, 1))

    loader = their_dataset.DatasetLoader(db, None, False, to_tensor_normalize)
    frames = []
    for i, d in enumerate(db.data):
        frames.append({"image_id": int(d["img_id"]), "bbox": np.asarray(d["bbox"], np.float64).tolist(),
                       "root_cam": np.asarray(d["root_cam"], np.float64).tolist(),
                       "joint_cam": d["joint_cam"].astype(np.float64).tolist(), "gt_dtype": str(d["joint_cam"].dtype),
                       "input_sha256": hashlib.sha256(loader[i].numpy().tobytes()).hexdigest()})
    out_dir = work / f"result_p{protocol}"
    out_dir.mkdir(exist_ok=True)
    db.evaluate(preds.astype(np.float32), str(out_dir))
    saved_path = out_dir / "bbox_root_pose_human36m_output.json"
    saved = json.loads(saved_path.read_text())
    errors = []
    for rec, d in zip(saved, db.data):
        gt = d["joint_cam"] - d["joint_cam"][db.root_idx]
        errors.append(np.sqrt(((np.asarray(rec["joint_cam"], np.float32) - gt[:17]) ** 2).sum(1)).astype(np.float64))
    print(json.dumps({"frames": frames, "mean_mm": float(np.mean(errors)), "saved": str(saved_path)}))


if __name__ == "__main__":
    main()
