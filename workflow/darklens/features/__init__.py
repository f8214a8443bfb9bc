"""Features: the input planes of the classifiers, built from an image and its lens model.

The same code builds them at training time (`files.write_features`: the features file
`data/features/{kind}/{class}.h5` of a class file and its fit file) and at prediction time
(`channels.channels_for_new_images`, which fits the smooth lens model to new images when a
lens-model channel is asked). Modules: `residual` (the Gaussian residual, the seed's recipe),
`noise` (the per-pixel noise sigma of the image's noise model), `lens_model` (residuals against
the fitted and the true smooth model, in units of sigma), `source_plane` (the image back-traced
through the fitted macro model onto a source-plane grid, and what re-lensing that reconstruction
leaves), `channels` (the registry CHANNELS of every channel's definition and unit, and the one
function that stacks requested channels into (N, C, H, W) float32) and `files` (a class's
features file). Definitions, units and costs: docs/features.md.

May import: physics, io, fitting, simulation.
"""
