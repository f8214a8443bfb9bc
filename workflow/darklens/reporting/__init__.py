"""Reporting: what users read and look at.

`summary` (the summary tables in CSV, Markdown and HTML), `figures` (confusion matrices,
training curves, ROC curves, samples, accuracy against signal, sensitivity, attribution) and
`gallery` (simulated images with their convergence maps).

May import: io, physics, simulation, fitting, features, evaluation, learning, config.
"""
