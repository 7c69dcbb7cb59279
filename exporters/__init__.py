"""aifinops exporters: the GPU and token-cost exporters and what every part shares (schema, pricing, runtime)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("aifinops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
