"""Training code: the deterministic archive and its CDK asset (``TrainingSource``)."""

from __future__ import annotations

from .archive import (
    ARCHIVE_NAME,
    EXCLUDED_NAMES,
    EXCLUDED_SUFFIXES,
    FIXED_MTIME,
    SourceBundle,
    build_source_bundle,
    default_cache_dir,
)
from .extra_files import ExtraFile
from .training_source import TrainingSource

__all__ = [
    "ARCHIVE_NAME",
    "EXCLUDED_NAMES",
    "EXCLUDED_SUFFIXES",
    "FIXED_MTIME",
    "ExtraFile",
    "SourceBundle",
    "TrainingSource",
    "build_source_bundle",
    "default_cache_dir",
]
