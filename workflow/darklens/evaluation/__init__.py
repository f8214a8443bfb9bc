"""Evaluation: numbers about trained models, computed from their predictions.

`metrics` (accuracy, one-vs-rest ROC AUC, confusion rates), `statistics` (paired bootstrap over
test images and seeds, seed t-test), `comparisons` (runs read back, means over seeds, the ablation
grid and the planned paired comparisons), `signal` (recall against the per-image substructure
signal), `collect` (the per-run metrics table), `sweep` (planning a sensitivity sweep: one config
per point) and `sensitivity` (the table of a sweep's results).

May import: io, config.
"""
