"""I/O: one module per file format, and nothing else reads or writes those formats.

`class_files` (HDF5 class, shard and feature files), `fit_files` (the smooth-lens fit of a
class, `data/fits/{class}.h5`), `npy` (.npy images, folders of them and
their import into a class file), `image_stacks` (images to predict on, read in chunks),
`split_file` (the split JSON), `tables` (CSV tables, metrics.json, predictions.csv, run directory
names) and `atomic` (every output is written to a temporary sibling and renamed).

May import: nothing else of darklens.
"""
