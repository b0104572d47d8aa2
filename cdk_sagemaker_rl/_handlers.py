"""Where the Lambda handlers the library bundles are on disk.

Their source is ``lambda/`` at the repo root. The wheel and the sdist carry that folder inside the
package as ``cdk_sagemaker_rl/_lambda/`` (see setup.py and MANIFEST.in), so an installed library
finds it next to this file; a source checkout or an editable install has no ``_lambda/`` and uses
the repo's ``lambda/``. That folder, whole, is the one asset every bundled function runs from (its
task root: handlers are ``<package>.<module>.<function>``, the packages share ``_shared``); it is
zipped as it is, so both places give the same asset hash.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent

#: Where an installed wheel or sdist puts the handlers.
INSTALLED_ROOT = _PACKAGE / "_lambda"

#: Where a source checkout (and an editable install of it) keeps them.
SOURCE_ROOT = _PACKAGE.parent / "lambda"


def handler_root() -> Path:
    """The handler tree: ``custom_resources``, ``predict`` and the ``_shared`` code they use."""
    for root in (INSTALLED_ROOT, SOURCE_ROOT):
        if root.is_dir():
            return root
    raise FileNotFoundError(
        "cdk_sagemaker_rl: the bundled Lambda handlers are missing; looked in "
        f"{INSTALLED_ROOT} (installed package) and {SOURCE_ROOT} (source checkout). "
        "Reinstall cdk-sagemaker-rl from its wheel or sdist."
    )
