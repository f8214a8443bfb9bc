"""Smooth-lens fitting: SIE + external shear + elliptical Sersic source (+ Sersic lens light) fitted
to every image of a class file with the image's own noise model (docs/fitting.md).

Modules: `model` (the torch forward model, the same physics as the simulator's noiseless smooth
image, with its analytic Jacobian; float64 rays, CPU or CUDA), `solver` (data-driven initial
guesses, several starts, batched Levenberg-Marquardt with the amplitudes solved linearly and a
coarse-to-fine supersampling schedule), `files` (the fit of a class file: read through
`darklens.io.class_files`, written atomically to `data/fits/{class}.h5`; with each image's
`substructure_chi_refit`, from its noiseless version re-simulated by `darklens.simulation`).

May import: physics, io, simulation, config.
"""
