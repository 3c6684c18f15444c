"""kling-cli: generate still images with Kling Image O1 through the providers that serve it."""

__version__ = "0.1.0"
