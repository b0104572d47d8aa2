"""Shared fixtures: synthesize once, assert many times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


def cdk_json_context() -> dict[str, Any]:
    return dict(json.loads((ROOT / "cdk.json").read_text())["context"])


def synth_app(outdir: Path, extra_context: Mapping[str, Any] | None = None) -> Path:
    """Synthesize the reference app in a fresh process (as `cdk synth` does) into ``outdir``."""
    context = {**cdk_json_context(), **(extra_context or {})}
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps(context)}
    subprocess.run(
        [sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, check=True, capture_output=True
    )
    return outdir


def load_template(outdir: Path, stack: str) -> dict[str, Any]:
    return dict(json.loads((outdir / f"{stack}.template.json").read_text()))


@pytest.fixture(scope="session")
def reference_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference app synthesized once for the whole session (environment-agnostic)."""
    return synth_app(tmp_path_factory.mktemp("reference"))
