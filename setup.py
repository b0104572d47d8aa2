"""The package list, which pyproject.toml cannot express: found, plus the handlers under a new name.

The library's packages are discovered (so a new subpackage ships without editing a list). The Lambda
handlers' source is ``lambda/`` at the repo root, zipped whole as the one asset of every bundled
function; the wheel carries it (every package of it, ``_shared`` included) inside the package as
``cdk_sagemaker_rl/_lambda/``, where ``cdk_sagemaker_rl._handlers`` finds it. ``find`` in
pyproject.toml cannot rename a folder, hence this file. Everything else is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

HANDLERS = "cdk_sagemaker_rl._lambda"
NOT_PACKAGES = ["*__pycache__*"]

setup(
    packages=[
        *find_namespace_packages(
            include=["cdk_sagemaker_rl", "cdk_sagemaker_rl.*"], exclude=NOT_PACKAGES
        ),
        *(
            f"{HANDLERS}.{name}"
            for name in find_namespace_packages(where="lambda", exclude=NOT_PACKAGES)
        ),
    ],
    package_dir={HANDLERS: "lambda"},
)
