"""Regenerate cdk_sagemaker_rl/_data/instance_types.json from botocore's SageMaker service model.

The instance types SageMaker accepts are the ``TrainingInstanceType`` and
``ProductionVariantInstanceType`` enums of the API model that ships in botocore. Keeping a copy as
package data lets the constructs reject a typo at synth time without importing botocore (not a
runtime dependency of the library); tests/test_instance_types.py fails when botocore's enums drift
from the copy, and this script is the fix::

    .venv/bin/python scripts/refresh_instance_types.py          # rewrite the data file
    .venv/bin/python scripts/refresh_instance_types.py --check  # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import botocore
import botocore.session

DATA_FILE = (
    Path(__file__).resolve().parents[1] / "cdk_sagemaker_rl" / "_data" / "instance_types.json"
)

SHAPES = {"training": "TrainingInstanceType", "serving": "ProductionVariantInstanceType"}


def current() -> dict[str, Any]:
    """The data file's content as botocore's installed service model says it should be."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    document: dict[str, Any] = {
        "about": "SageMaker instance types from botocore's sagemaker service model; "
        "regenerate with scripts/refresh_instance_types.py.",
        "botocore_version": botocore.__version__,
        "shapes": dict(SHAPES),
    }
    for key, shape in SHAPES.items():
        document[key] = sorted(model.shape_for(shape).enum)
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only report whether the file is stale"
    )
    args = parser.parse_args(argv)
    fresh = current()
    if args.check:
        stored = json.loads(DATA_FILE.read_text(encoding="utf-8"))
        stale = [key for key in SHAPES if stored.get(key) != fresh[key]]
        if stale:
            print(f"{DATA_FILE} is stale for: {', '.join(stale)}", file=sys.stderr)
            return 1
        return 0
    DATA_FILE.write_text(render(fresh), encoding="utf-8")
    print(
        f"wrote {DATA_FILE}: {len(fresh['training'])} training, {len(fresh['serving'])} serving "
        f"instance types (botocore {fresh['botocore_version']})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
