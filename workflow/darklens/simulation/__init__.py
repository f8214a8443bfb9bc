"""Simulation: images of the three dark-matter classes from the config.

`render` draws one image's macro model and source and ray-shoots it; `substructure` draws the
class's subhalos, vortex or granule field (and its mass-compensating disk); `shards` cuts a class
into reproducible jobs and writes them; `conventions` states how another code re-renders a
stored image; `presets` holds the instrument/lens/source presets; `reference` re-renders an image
with lenstronomy (the test and benchmark reference; lenstronomy is imported inside).

May import: physics, io, config.
"""
