"""Learning: from class files to trained models and their predictions.

`split` (seeded stratified split and the split file), `channels` (input channels, the same code at
training and prediction time, and the features file), `dataset` (the training array), `models`
(architectures), `batches` (normalisation and seeded batches of the in-memory array), `train` (the
training loop), `checkpoint` (checkpoint.pt and resume.pt), `predict` (a checkpoint on new
images), `attribution` (Grad-CAM and integrated gradients), `controls` (the shortcut controls:
logistic regressions on the radial profile and on the fitted nuisance parameters) and `devices`
(GPUs and memory of a training job).

May import: io, evaluation, config.
"""
