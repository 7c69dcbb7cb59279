"""Reads the negotiated-price override file (`llm.pricing.overrides_file`) into the pricer's rules."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..pricing import PriceOverride
from ..runtime.config import load_config


@dataclass(frozen=True)
class OverrideFile:
    """The whole override file (its format: `pricing.overrides`)."""

    overrides: tuple[PriceOverride, ...] = ()


def load_overrides(path: str | os.PathLike[str]) -> tuple[PriceOverride, ...]:
    """Read and check an override file; raises `ConfigError` listing every problem by its path."""
    return load_config(OverrideFile, path, environ={}).overrides
