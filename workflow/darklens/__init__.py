"""darklens: strong-lensing simulation and dark-matter substructure classification."""

__version__ = "0.1.0"

CLASS_NAMES = ("no_sub", "cdm", "axion")
