"""Learning: from class files to trained models and their predictions.

`split` (seeded stratified split and the split file), `dataset` (the training array, its
channels stacked by `darklens.features.channels`, the same code as at prediction time), `models`
(architectures), `batches` (normalisation and seeded batches of the in-memory array), `train` (the
training loop), `checkpoint` (checkpoint.pt and resume.pt), `predict` (a checkpoint on new
images), `attribution` (Grad-CAM and integrated gradients), `controls` (the shortcut controls:
logistic regressions on the radial profile and on the fitted nuisance parameters) and `devices`
(GPUs and memory of a training job).

May import: io, features, evaluation, config.
"""
