"""`convnextpose variants [--json]`: the published variants and their figures.

What each variant is (the shapes that identify it in a file, the upsampling the weights cannot
show) and what it should give (parameter counts, GMAC, heatmap volume, published Human3.6M
errors), so a user can read a file's `inspect` output against it. Evidence: docs/spec.md.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from . import exit_codes


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("variants", help="list the published variants and their figures",
                              description="The four published ConvNeXtPose variants: architecture, exact parameter "
                                          "counts, GMAC and heatmap at 256x256, published Human3.6M errors.")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(func=run)


def rows() -> list[dict[str, Any]]:
    from reference_model import VARIANTS, format_head_upsample

    out = []
    for v in VARIANTS.values():
        s = v.spec
        out.append({
            "variant": v.name, "depths": list(s.depths), "dims": list(s.dims), "head_channels": list(s.head_channels),
            "head_upsample": format_head_upsample(s.head_upsample), "depth_dim": s.depth_dim, "joints": s.joint_num,
            "final_layer_shape": [s.joint_num * s.depth_dim, s.head_channels[-1], 1, 1],
            "num_parameters": v.num_parameters, "num_state_values": v.num_state_values, "gmac_256": v.gmac_256,
            "heatmap_256": list(v.heatmap_256), "mpjpe_protocol2_mm": v.mpjpe_protocol2_mm,
            "pa_mpjpe_protocol1_mm": v.pa_mpjpe_protocol1_mm,
        })
    return out


def run(args: argparse.Namespace) -> int:
    table = rows()
    if args.json:
        print(json.dumps(table, indent=2))
        return exit_codes.OK
    header = ("variant", "depths", "dims", "head", "upsample", "D", "final_layer", "params", "GMAC@256",
              "heatmap@256", "MPJPE P2", "PA-MPJPE P1")
    lines = [header]
    for r in table:
        lines.append((r["variant"], ",".join(map(str, r["depths"])), ",".join(map(str, r["dims"])),
                      "x".join(map(str, r["head_channels"])), r["head_upsample"], str(r["depth_dim"]),
                      "[{}, {}, 1, 1]".format(*r["final_layer_shape"][:2]), f"{r['num_parameters']:,}",
                      f"{r['gmac_256']:.3f}", "x".join(map(str, r["heatmap_256"])), f"{r['mpjpe_protocol2_mm']:.2f}",
                      "-" if r["pa_mpjpe_protocol1_mm"] is None else f"{r['pa_mpjpe_protocol1_mm']:.1f}"))
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(header))]
    for row in lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    print("18 joints (Human3.6M + Thorax) each; errors in mm as published. The upsampling column cannot be read "
          "from weights (docs/spec.md, 'The four published variants').")
    return exit_codes.OK
