"""Scenario presets (``*.toml`` here, read by :func:`specedge.scenario.load_preset`) and their calibration.

:mod:`specedge.presets.calibration` shows how the ``paper`` preset's assumed values reproduce the shares that the
paper's headline numbers imply (docs/model.md section 7): ``python -m specedge.presets.calibration``.
"""
