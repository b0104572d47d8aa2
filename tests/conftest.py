"""Shared fixtures: synthesize once, assert many times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
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


class _PathsOnce(list[str]):
    """A loader's search paths; boto3 appends its data path for every session it creates."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@pytest.fixture(scope="session", autouse=True)
def shared_botocore_loader() -> Iterator[None]:
    """One botocore data loader (per data path) for every session the test run creates.

    moto's ``mock_aws`` sets ``boto3.DEFAULT_SESSION`` aside, so every test (and every cold start
    of a handler under test) builds a new session, whose new loader parses the service models'
    JSON again: a tenth of a second and more per client, most of the Lambda tests' time. The
    models are read-only data; sharing the loader changes nothing else.
    """
    import botocore.loaders
    import botocore.session

    loaders: dict[str | None, botocore.loaders.Loader] = {}
    create_loader = botocore.loaders.create_loader

    def shared(search_path_string: str | None = None) -> botocore.loaders.Loader:
        if search_path_string not in loaders:
            loader = create_loader(search_path_string)
            loader._search_paths = _PathsOnce(loader.search_paths)
            loaders[search_path_string] = loader
        return loaders[search_path_string]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", shared)
        yield


@pytest.fixture(scope="session")
def reference_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference app synthesized once for the whole session (environment-agnostic)."""
    return synth_app(tmp_path_factory.mktemp("reference"))


#: The longest test files, longest first (measured: `make test` with --durations=0). With
#: `-n 2 --dist loadfile --no-loadscope-reorder` files are handed to the workers in collection
#: order. xdist's default reorders files by their number of tests, which put these one-test files
#: last, to run alone at the end (306 s instead of about 215 s here): they start first instead.
LONGEST_FIRST = (
    "tests/local/test_serving_updates.py",
    "tests/local/test_gating_promotion.py",
    "tests/local/test_distributed_local.py",
    "tests/local/test_emulator.py",
    "tests/local/test_local_mode.py",
    "tests/local/test_endpoint_updates.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the longest files first; every other file keeps its place (a stable sort)."""
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}

    def key(item: pytest.Item) -> int:
        path = Path(str(item.path)).resolve().relative_to(ROOT).as_posix()
        return rank.get(path, len(rank))

    items.sort(key=key)
