"""The Human3.6M joint set the published checkpoints predict: names, flip pairs, root, scored joints.

Dataset facts, not architecture: a spec says how many joints a network has (`ArchSpec.joint_num`),
these say which joint is which for the 18-joint Human3.6M models (docs/spec.md §1, §6).
"""

from __future__ import annotations

#: Human3.6M joint order with the added Thorax (18 joints), as the authors use it.
H36M_JOINT_NAMES: tuple[str, ...] = (
    "Pelvis", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Torso", "Neck", "Nose",
    "Head", "L_Shoulder", "L_Elbow", "L_Wrist", "R_Shoulder", "R_Elbow", "R_Wrist", "Thorax",
)
#: Left/right pairs swapped by the flip test (authors' `flip_pairs` for Human3.6M).
H36M_FLIP_PAIRS: tuple[tuple[int, int], ...] = ((1, 4), (2, 5), (3, 6), (14, 11), (15, 12), (16, 13))
H36M_ROOT_JOINT = 0
H36M_EVAL_JOINTS: tuple[int, ...] = tuple(range(17))
