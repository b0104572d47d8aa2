"""The library as other people get it: built into a wheel and an sdist from a clean copy of the
repo, installed into a fresh venv, used by an app that lives outside the repo.

Only the library's runtime dependencies (aws-cdk-lib, constructs and what they need) are visible in
that venv, borrowed from this venv through a ``.pth`` file so that nothing is downloaded; this
repo's editable install, the ``local`` extra and the test tools are not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from importlib.metadata import Distribution, distribution
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cdk_sagemaker_rl import _handlers

ROOT = Path(__file__).resolve().parent.parent
USER_APP = Path(__file__).resolve().parent / "packaging" / "user_app" / "app.py"
PACKAGE = "cdk_sagemaker_rl"
USER_STACK = "UserCoach"
#: A hung build or synth fails the test instead of the whole run.
TIMEOUT = 300


def _run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{error}\n--- stdout\n{error.stdout!r}\n--- stderr\n{error.stderr!r}")
    if done.returncode != 0:
        output = f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        pytest.fail(f"exit {done.returncode}: {command}\n{output}")
    return done.stdout


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would leak this repo into a child's imports."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"}
        and not key.startswith("CDK_")
    }
    env["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = "1"
    return {**env, **extra}


def _repo_files() -> list[str]:
    """The files a checkout of the work tree has: tracked or new, not ignored, not deleted.

    New files count so that a refactoring in progress (a module moved into a new subpackage, not
    yet added) is built as the other tests see it; CI's fresh clone has the tracked files only.
    """
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the repo")
    listed = _run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT
    ).split("\0")
    return sorted({name for name in listed if name and (ROOT / name).is_file()})


@dataclass(frozen=True)
class Dists:
    #: The copy of the repo the distributions are built from, and its files.
    checkout: Path
    repo_files: list[str]
    wheel: Path
    sdist: Path
    #: The wheel built from the sdist, as pip does when it installs the sdist.
    sdist_wheel: Path


BUILD = """
import sys
from setuptools import build_meta
kind, out = sys.argv[1:]
print((build_meta.build_wheel if kind == "wheel" else build_meta.build_sdist)(out))
"""


def _build(kind: str, source: Path, out: Path) -> Path:
    """``pip wheel --no-build-isolation`` without pip: this venv's setuptools, no network."""
    name = _run([sys.executable, "-c", BUILD, kind, str(out)], cwd=source).strip().splitlines()[-1]
    return out / name


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    checkout = tmp_path_factory.mktemp("checkout")
    files = []
    for name in _repo_files():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(ROOT / name, checkout / name)
        except FileNotFoundError:  # deleted since it was listed: the work tree is shared
            continue
        files.append(name)
    out = tmp_path_factory.mktemp("dist")
    wheel = _build("wheel", checkout, out)
    sdist = _build("sdist", checkout, out)
    unpacked = tmp_path_factory.mktemp("sdist")
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    (source,) = unpacked.iterdir()
    sdist_wheel = _build("wheel", source, tmp_path_factory.mktemp("sdist-dist"))
    return Dists(checkout, files, wheel, sdist, sdist_wheel)


def _wheel_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {
            name: archive.read(name)
            for name in archive.namelist()
            if not name.endswith("/") and ".dist-info/" not in name
        }


def _expected_in_package(repo_files: list[str]) -> dict[str, str]:
    """Path in the wheel -> path in the repo: the package's modules and data, all the handlers."""
    expected = {
        name: name
        for name in repo_files
        if name.startswith(f"{PACKAGE}/")
        and (
            name.endswith(".py")
            or name.startswith(f"{PACKAGE}/_data/")
            or name == f"{PACKAGE}/py.typed"
        )
    }
    expected.update(
        {
            f"{PACKAGE}/_lambda/{name.removeprefix('lambda/')}": name
            for name in repo_files
            if name.startswith("lambda/")
        }
    )
    return expected


def test_wheel_carries_package_handlers_and_py_typed(dists: Dists) -> None:
    in_wheel = _wheel_files(dists.wheel)
    expected = _expected_in_package(dists.repo_files)
    handlers = [name for name in expected if name.startswith(f"{PACKAGE}/_lambda/")]
    assert f"{PACKAGE}/_lambda/predict/index.py" in handlers
    assert f"{PACKAGE}/_lambda/custom_resources/training_run.py" in handlers
    assert f"{PACKAGE}/_lambda/_shared/json_logger.py" in handlers  # the handlers' one logger
    assert f"{PACKAGE}/py.typed" in expected
    missing = sorted(set(expected) - set(in_wheel))
    assert not missing, f"not in the wheel (a package setup.py does not find?): {missing}"
    for installed, source in expected.items():
        assert in_wheel[installed] == (dists.checkout / source).read_bytes(), installed
    assert sorted(set(in_wheel) - set(expected)) == [], "the wheel has files the repo does not"


def test_sdist_carries_handlers_and_py_typed(dists: Dists) -> None:
    with tarfile.open(dists.sdist) as archive:
        root, *_ = archive.getnames()
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    wanted = [
        name
        for name in dists.repo_files
        if name.startswith(("lambda/", f"{PACKAGE}/")) or name in {"setup.py", "MANIFEST.in"}
    ]
    assert f"{PACKAGE}/py.typed" in wanted
    assert sorted(set(wanted) - names) == [], f"not in {root}"
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)


def test_wheel_built_from_sdist_is_the_same(dists: Dists) -> None:
    assert _wheel_files(dists.sdist_wheel) == _wheel_files(dists.wheel)


# ------------------------------------------------------------------------------ installed use
def _runtime_distributions() -> list[Distribution]:
    """The library's declared dependencies and theirs, as installed in this venv."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = list(project["dependencies"])
    found: dict[str, Distribution] = {}
    while todo:
        requirement = Requirement(todo.pop())
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if canonicalize_name(requirement.name) in found:
            continue
        installed = distribution(requirement.name)
        found[canonicalize_name(requirement.name)] = installed
        todo.extend(installed.requires or [])
    return list(found.values())


def _dependency_dir(into: Path) -> Path:
    """Symlinks to the runtime dependencies' top-level files in this venv, and nothing else."""
    into.mkdir()
    for dist in _runtime_distributions():
        assert dist.files is not None, f"{dist.metadata['Name']} has no RECORD"
        site = Path(str(dist.locate_file("")))
        for top in {file.parts[0] for file in dist.files}:
            if top not in {"..", "__pycache__"} and not (into / top).exists():
                (into / top).symlink_to(site / top)
    return into


@pytest.fixture(scope="module")
def dependencies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _dependency_dir(tmp_path_factory.mktemp("deps") / "site")


@dataclass(frozen=True)
class Venv:
    root: Path
    python: Path
    site: Path


def _venv_with(dist: Path, root: Path, dependencies: Path) -> Venv:
    _run([sys.executable, "-m", "venv", "--without-pip", str(root)], cwd=root.parent)
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([str(python), "-c", code], cwd=root, env=_clean_env()).strip())
    (site / "_runtime_dependencies.pth").write_text(f"{dependencies}\n")
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", "--no-cache-dir", str(dist)],
        cwd=root,
        env=_clean_env(),
    )  # fmt: skip
    return Venv(root, python, site)


@pytest.fixture(scope="module")
def wheel_venv(dists: Dists, dependencies: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return _venv_with(dists.wheel, tmp_path_factory.mktemp("wheel") / "venv", dependencies)


@pytest.fixture(scope="module")
def sdist_venv(dists: Dists, dependencies: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return _venv_with(dists.sdist_wheel, tmp_path_factory.mktemp("sdist") / "venv", dependencies)


@pytest.fixture(scope="module", params=["wheel", "sdist"])
def venv(request: pytest.FixtureRequest) -> Venv:
    """A fresh venv with the library installed from the wheel, or from the sdist (its wheel)."""
    installed: Venv = request.getfixturevalue(f"{request.param}_venv")
    return installed


@dataclass(frozen=True)
class Synth:
    venv: Venv
    report: dict[str, Any]
    outdir: Path


@pytest.fixture(scope="module")
def user_synth(venv: Venv) -> Synth:
    """The user app (tests/packaging/user_app) synthesized in its own folder, outside the repo."""
    app_dir = venv.root.parent / "user_app"
    (app_dir / "src").mkdir(parents=True)
    shutil.copy(USER_APP, app_dir / "app.py")
    (app_dir / "src" / "train.py").write_text("print('training')\n")
    outdir = app_dir / "cdk.out"
    stdout = _run([str(venv.python), "app.py"], cwd=app_dir, env=_clean_env(CDK_OUTDIR=str(outdir)))
    return Synth(venv, json.loads(stdout.strip().splitlines()[-1]), outdir)


def test_user_app_uses_the_installed_library(user_synth: Synth) -> None:
    library = Path(user_synth.report["library"])
    assert library.is_relative_to(user_synth.venv.site), library
    assert user_synth.report["local_imported"] is False, "the runtime library imported local mode"


def _handler_tree(dists: Dists) -> dict[str, bytes]:
    """The files of ``lambda/`` (relative path -> content) as the build saw them: the asset."""
    return {
        name.removeprefix("lambda/"): (dists.checkout / name).read_bytes()
        for name in dists.repo_files
        if name.startswith("lambda/")
    }


def test_user_app_bundles_the_handlers(user_synth: Synth, dists: Dists) -> None:
    """Every function runs from one asset, the whole handler tree as installed (the repo's
    ``lambda/``); its Handler is ``<package>.<module>.<function>`` inside it."""
    template = json.loads((user_synth.outdir / f"{USER_STACK}.template.json").read_text())
    functions = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
    ]
    (key,) = {function["Code"]["S3Key"] for function in functions}
    asset = user_synth.outdir / f"asset.{key.removesuffix('.zip')}"
    content = {
        path.relative_to(asset).as_posix(): path.read_bytes()
        for path in sorted(asset.rglob("*"))
        if path.is_file()
    }
    assert content == _handler_tree(dists)
    packages = set()
    for function in functions:
        module = function["Handler"].rsplit(".", 1)[0]
        assert f"{module.replace('.', '/')}.py" in content, function["Handler"]
        packages.add(module.split(".")[0])
    assert packages == {"custom_resources", "predict"}
    # Nothing in the cloud assembly points back into this repo.
    for path in user_synth.outdir.glob("*.json"):
        assert str(ROOT) not in path.read_text(), path.name


# ------------------------------------------------------------------------------ type checking
USER_TYPES = """
from cdk_sagemaker_rl import RLEstimator, RLToolkit

toolkit: RLToolkit = RLToolkit.COACH
estimator_type: type[RLEstimator] = RLEstimator
not_an_int: int = RLToolkit.COACH
"""

MYPY_CONFIG = """
[mypy]
# aws-cdk-lib is large; what is checked here is that this library's types are found and read.
[mypy-aws_cdk.*,constructs.*,jsii.*]
follow_imports = skip
"""


def test_mypy_reads_the_installed_package(wheel_venv: Venv, tmp_path: Path) -> None:
    if shutil.which("mypy", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("mypy is not installed in this venv")
    (tmp_path / "user.py").write_text(USER_TYPES.lstrip())
    (tmp_path / "mypy.ini").write_text(MYPY_CONFIG.lstrip())
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--python-executable",
         str(wheel_venv.python), "--cache-dir", str(tmp_path / ".mypy_cache"), "user.py"],
        cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=TIMEOUT,
        check=False,
    )  # fmt: skip
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    # The one deliberate error proves the types were read; without py.typed it would be an
    # [import-untyped] error and RLToolkit would be Any.
    assert len(errors) == 1, done.stdout + done.stderr
    assert errors[0].startswith("user.py:5:") and "[assignment]" in errors[0], errors


# ------------------------------------------------------------------------------ handler_root
def test_handler_root_prefers_the_installed_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed, source = tmp_path / "site" / "_lambda", tmp_path / "repo" / "lambda"
    monkeypatch.setattr(_handlers, "INSTALLED_ROOT", installed)
    monkeypatch.setattr(_handlers, "SOURCE_ROOT", source)
    with pytest.raises(FileNotFoundError, match="bundled Lambda handlers are missing"):
        _handlers.handler_root()
    source.mkdir(parents=True)
    assert _handlers.handler_root() == source
    installed.mkdir(parents=True)
    assert _handlers.handler_root() == installed


def test_handler_root_in_this_checkout_is_the_repo_lambda_folder() -> None:
    assert _handlers.handler_root() == ROOT / "lambda"
