"""gentut: the library behind a course on deep generative models."""

from .hardware import device

__all__ = ["device"]
__version__ = "0.1.0"
