"""I/O: one module per file format, and nothing else reads or writes those formats.

`class_files` (HDF5 class, shard and feature files), `npy` (.npy images and folders of them),
`importing` (a folder of .npy images into a class file), `split_file` (the split JSON),
`tables` (CSV tables, metrics.json, predictions.csv, run directory names) and `atomic`
(every output is written to a temporary sibling and renamed).

May import: nothing else of darklens.
"""
