"""Learning: from class files to trained models and their predictions.

`split` (seeded stratified split), `channels` (input channels, the same code at training and
prediction time), `dataset` (the training array), `models` (architectures), `train` (the
training loop, checkpoints and resume), `predict` (a checkpoint on new images), `attribution`
(Grad-CAM and integrated gradients) and `devices` (GPU discovery).

May import: io, evaluation, config.
"""
