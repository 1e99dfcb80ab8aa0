"""gradfit's version, in the bottom layer: a model file records it (:mod:`gradfit.persistence`)
without importing the package root, which names every public class."""

__version__ = "0.1.0"  # as pyproject.toml's [project] version
