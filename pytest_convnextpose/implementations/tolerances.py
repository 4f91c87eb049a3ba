"""The documented default parity tolerances for implementations under test (docs/reimplementers.md).

Heatmap units: 1e-3 of a heatmap cell is ~0.03 mm at the Human3.6M scale for a 64-bin
volume, far below any accuracy effect, yet 100x above float32 rounding of a faithful port.
Their own module, importing nothing, because the plugin shows them in `--help` at start-up
and a pytest run that never uses the suite must not pay for numpy or torch.
"""
DEFAULT_ATOL = 1e-3
DEFAULT_RTOL = 1e-4
