"""The drift effect floors: the smallest effects that count as drift (used by the Analyze stage's drift checks).

Measured, not picked: the effect only 0.1 % of clean 500-row batches reach, over nine column shapes
(`python bench/drift.py --part floors`; the table is in bench/RESULTS.md). They live apart from
``pipeline.drift`` because the config offers them as defaults, and the config must load without numpy,
pandas and scipy so that healctl's read-only commands start fast.
"""

from __future__ import annotations

KS_FLOOR = 0.1
WASSERSTEIN_FLOOR = 0.19
PSI_FLOOR = 0.07
JS_FLOOR = 0.09
