from importlib.metadata import version as _v
__version__ = _v("seekgate")
__all__ = ["__version__"]
