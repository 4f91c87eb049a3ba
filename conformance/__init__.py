"""The ConvNeXtPose conformance suite (installed with pytest-convnextpose).

Run it with `pytest --ckpt=PATH` from any directory (or `pytest --pyargs conformance`).
One module per area; every test is named for the invariant it checks. Fixtures come from
the plugin (`pytest_convnextpose.plugin.fixtures`), see docs/plugin.md.
"""
