"""Tests for cdk_sagemaker_rl.source: SDK layout, reproducible bytes, synth-time errors, assets."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import aws_cdk as cdk
import pytest

from cdk_sagemaker_rl.errors import ValidationError
from cdk_sagemaker_rl.source import (
    ARCHIVE_NAME,
    FIXED_MTIME,
    SourceBundle,
    TrainingSource,
    build_source_bundle,
    default_cache_dir,
)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _members(bundle: SourceBundle) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(bundle.path, "r:gz") as tar:
        return {info.name: info for info in tar.getmembers()}


def _read_member(bundle: SourceBundle, name: str) -> bytes:
    with tarfile.open(bundle.path, "r:gz") as tar:
        stream = tar.extractfile(name)
        assert stream is not None
        return stream.read()


def _make_project(
    root: Path, *, file_mode: int = 0o644, exec_mode: int = 0o755, reverse: bool = False
) -> Path:
    """A training project: source_dir `src` with a package, junk, and a `lib/common` dependency."""
    files: list[tuple[str, str, int]] = [
        ("src/train.py", "import agents\nprint('train')\n", file_mode),
        ("src/agents/__init__.py", "", file_mode),
        ("src/agents/ppo.py", "ALGO = 'ppo'\n", file_mode),
        ("src/requirements.txt", "gymnasium==1.0.0\n", file_mode),
        ("src/run.sh", "#!/bin/sh\nexec python train.py\n", exec_mode),
        ("src/agents/__pycache__/ppo.cpython-311.pyc", "junk", file_mode),
        ("src/stale.pyc", "junk", file_mode),
        ("src/.DS_Store", "junk", file_mode),
        ("src/.git/index", "stat cache", file_mode),
        ("lib/common/__init__.py", "", file_mode),
        ("lib/common/util.py", "def f():\n    return 1\n", file_mode),
    ]
    for relative, text, mode in reversed(files) if reverse else files:
        _write(root / relative, text, mode)
    (root / "src" / "empty").mkdir()
    return root


def test_layout_with_source_dir_and_dependencies(tmp_path: Path) -> None:
    project = _make_project(tmp_path / "project")
    bundle = build_source_bundle(
        "train.py", "src", ["lib/common/"], base_dir=project, cache_dir=tmp_path / "cache"
    )

    assert bundle.entry_point == "train.py"
    assert list(bundle.members) == [
        "agents",
        "agents/__init__.py",
        "agents/ppo.py",
        "common",
        "common/__init__.py",
        "common/util.py",
        "empty",
        "requirements.txt",
        "run.sh",
        "train.py",
    ]
    members = _members(bundle)
    assert list(members) == list(bundle.members)
    assert _read_member(bundle, "common/util.py") == b"def f():\n    return 1\n"
    assert members["empty"].isdir()


def test_layout_without_source_dir_packs_only_the_entry_point(tmp_path: Path) -> None:
    project = _make_project(tmp_path / "project")
    bundle = build_source_bundle(
        "src/agents/ppo.py", dependencies=["lib/common"], base_dir=project, cache_dir=tmp_path
    )

    assert bundle.entry_point == "ppo.py"
    assert list(_members(bundle)) == ["common", "common/__init__.py", "common/util.py", "ppo.py"]
    assert _read_member(bundle, "ppo.py") == b"ALGO = 'ppo'\n"


def test_dependency_that_is_a_single_file_goes_to_the_root(tmp_path: Path) -> None:
    project = _make_project(tmp_path / "project")
    bundle = build_source_bundle(
        "train.py", project / "src", [project / "lib/common/util.py"], cache_dir=tmp_path / "c"
    )
    assert "util.py" in bundle.members
    assert _read_member(bundle, "util.py") == b"def f():\n    return 1\n"


def test_entry_point_in_a_subdirectory_of_source_dir_keeps_its_relative_path(
    tmp_path: Path,
) -> None:
    project = _make_project(tmp_path / "project")
    bundle = build_source_bundle("agents/ppo.py", project / "src", cache_dir=tmp_path / "cache")
    assert bundle.entry_point == "agents/ppo.py"
    assert "agents/ppo.py" in bundle.members


def test_relative_paths_default_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _make_project(tmp_path / "project")
    monkeypatch.chdir(project)
    bundle = build_source_bundle("train.py", "src", cache_dir=tmp_path / "cache")
    assert "train.py" in bundle.members


def test_members_are_sorted_whatever_the_directory_order(tmp_path: Path) -> None:
    names = [f"m{i:02d}.py" for i in range(24)]
    order = names[1::2][::-1] + names[::2]  # neither sorted nor reverse-sorted on creation
    for name in order:
        _write(tmp_path / "src" / "pkg" / name, name)
        _write(tmp_path / "src" / name, name)
    _write(tmp_path / "src" / "train.py", "")
    bundle = build_source_bundle("train.py", tmp_path / "src", cache_dir=tmp_path / "c")
    assert list(bundle.members) == [*names, "pkg", *(f"pkg/{n}" for n in names), "train.py"]
    assert list(_members(bundle)) == list(bundle.members)


def test_metadata_is_normalised(tmp_path: Path) -> None:
    project = _make_project(tmp_path / "project", file_mode=0o600, exec_mode=0o700)
    bundle = build_source_bundle("train.py", "src", base_dir=project, cache_dir=tmp_path)

    members = _members(bundle)
    for info in members.values():
        assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "", "")
        assert info.mtime == FIXED_MTIME
        assert info.isdir() or info.isfile()
    assert members["agents"].mode == 0o755
    assert members["run.sh"].mode == 0o755
    assert members["train.py"].mode == 0o644

    raw = Path(bundle.path).read_bytes()
    # gzip header: magic, deflate, no flags (so no embedded file name), mtime 0.
    assert raw[:4] == b"\x1f\x8b\x08\x00"
    assert raw[4:8] == b"\x00\x00\x00\x00"
    assert hashlib.sha256(raw).hexdigest() == bundle.sha256
    assert hashlib.sha256(gzip.decompress(raw)).hexdigest() == bundle.tar_sha256


def test_same_tree_in_different_places_gives_identical_bytes(tmp_path: Path) -> None:
    first = _make_project(tmp_path / "a" / "checkout", file_mode=0o600, exec_mode=0o700)
    second = _make_project(
        tmp_path / "b" / "elsewhere", file_mode=0o664, exec_mode=0o775, reverse=True
    )
    for offset, root in ((0, first), (86_400 * 365, second)):
        for path in root.rglob("*"):
            os.utime(path, (1_700_000_000 + offset, 1_700_000_000 + offset), follow_symlinks=False)

    one = build_source_bundle(
        "train.py", "src", ["lib/common"], base_dir=first, cache_dir=tmp_path / "c1"
    )
    two = build_source_bundle(
        "train.py", "src", ["lib/common"], base_dir=second, cache_dir=tmp_path / "c2"
    )

    assert Path(one.path).read_bytes() == Path(two.path).read_bytes()
    assert (one.sha256, one.tar_sha256) == (two.sha256, two.tar_sha256)
    assert one.members == two.members

    (second / "src" / "train.py").write_text("print('changed')\n")
    three = build_source_bundle(
        "train.py", "src", ["lib/common"], base_dir=second, cache_dir=tmp_path / "c2"
    )
    assert three.sha256 != one.sha256
    assert three.tar_sha256 != one.tar_sha256


def test_archive_is_content_addressed_in_the_cache(tmp_path: Path) -> None:
    project = _make_project(tmp_path / "project")
    cache = tmp_path / "cache"
    bundle = build_source_bundle("train.py", "src", base_dir=project, cache_dir=cache)

    assert Path(bundle.path) == cache / bundle.sha256 / ARCHIVE_NAME
    assert not [p for p in cache.iterdir() if p.name.startswith(".partial-")]

    # A damaged cache entry must not be trusted: the next build rewrites it.
    Path(bundle.path).write_bytes(b"corrupt")
    again = build_source_bundle("train.py", "src", base_dir=project, cache_dir=cache)
    assert again.path == bundle.path
    assert hashlib.sha256(Path(again.path).read_bytes()).hexdigest() == bundle.sha256


def test_default_cache_dir_is_under_the_system_temp_dir() -> None:
    assert default_cache_dir() == os.path.join(tempfile.gettempdir(), "cdk-sagemaker-rl")


def test_symlinks_are_stored_as_their_targets_content(tmp_path: Path) -> None:
    project = _make_project(tmp_path / "project")
    outside = tmp_path / "shared.py"
    outside.write_text("SHARED = True\n")
    (project / "src" / "shared.py").symlink_to(outside)
    (project / "src" / "common").symlink_to(project / "lib" / "common", target_is_directory=True)

    bundle = build_source_bundle("train.py", "src", base_dir=project, cache_dir=tmp_path / "c")

    members = _members(bundle)
    assert members["shared.py"].isfile()
    assert _read_member(bundle, "shared.py") == b"SHARED = True\n"
    assert members["common"].isdir()
    assert _read_member(bundle, "common/util.py") == b"def f():\n    return 1\n"
    assert not any(info.issym() or info.islnk() for info in members.values())


def _error(
    tmp_path: Path, call: Callable[[Path], object]
) -> str:  # build a project, run the call, return the error text
    project = _make_project(tmp_path / "project")
    with pytest.raises(ValidationError) as caught:
        call(project)
    return str(caught.value)


ERROR_CASES: dict[str, tuple[Callable[[Path, Path], object], list[str]]] = {
    "missing entry point": (
        lambda p, c: build_source_bundle("nope.py", "src", base_dir=p, cache_dir=c),
        ["entry_point='nope.py'", "existing file", "src/nope.py"],
    ),
    "missing entry point without source_dir": (
        lambda p, c: build_source_bundle("train.py", base_dir=p, cache_dir=c),
        ["entry_point='train.py'", "existing file", "base_dir"],
    ),
    "entry point is a directory": (
        lambda p, c: build_source_bundle("src", base_dir=p, cache_dir=c),
        ["entry_point='src'", "not a directory", "source_dir"],
    ),
    "entry point is a directory inside source_dir": (
        lambda p, c: build_source_bundle("agents", "src", base_dir=p, cache_dir=c),
        ["entry_point='agents'", "not a directory"],
    ),
    "missing source_dir": (
        lambda p, c: build_source_bundle("train.py", "code", base_dir=p, cache_dir=c),
        ["source_dir='code'", "existing local directory", "does not exist"],
    ),
    "source_dir is a file": (
        lambda p, c: build_source_bundle("train.py", "src/train.py", base_dir=p, cache_dir=c),
        ["source_dir='src/train.py'", "is not a directory"],
    ),
    "entry point outside source_dir": (
        lambda p, c: build_source_bundle("../lib/common/util.py", "src", base_dir=p, cache_dir=c),
        ["entry_point='../lib/common/util.py'", "inside source_dir", "relative to it"],
    ),
    "absolute entry point outside source_dir": (
        lambda p, c: build_source_bundle(
            str(p / "lib/common/util.py"), "src", cache_dir=c, base_dir=p
        ),
        ["lib/common/util.py'", "inside source_dir"],
    ),
    "entry point in an excluded directory": (
        lambda p, c: build_source_bundle(
            "agents/__pycache__/ppo.cpython-311.pyc", "src", base_dir=p, cache_dir=c
        ),
        ["'__pycache__' is left out", "excluded names"],
    ),
    "missing dependency": (
        lambda p, c: build_source_bundle("train.py", "src", ["lib/gone"], base_dir=p, cache_dir=c),
        ["dependencies='lib/gone'", "nothing exists", "lib/gone"],
    ),
    "dependencies given as one string": (
        lambda p, c: build_source_bundle("train.py", "src", "lib/common", base_dir=p, cache_dir=c),
        ["dependencies='lib/common'", "a list of paths"],
    ),
    "source_dir in S3": (
        lambda p, c: build_source_bundle(
            "train.py", "s3://bucket/code/sourcedir.tar.gz", base_dir=p, cache_dir=c
        ),
        ["source_dir='s3://bucket/code/sourcedir.tar.gz'", "a local path", "download"],
    ),
    "dependency in S3": (
        lambda p, c: build_source_bundle(
            "train.py", "src", ["S3://b/lib"], base_dir=p, cache_dir=c
        ),
        ["dependencies='S3://b/lib'", "a local path"],
    ),
    "dependency collides with a source_dir entry": (
        lambda p, c: build_source_bundle(
            "train.py", "src", ["lib/common", "src/agents"], base_dir=p, cache_dir=c
        ),
        ["'agents' is claimed by", "source_dir", "dependencies", "distinct names"],
    ),
    "two dependencies with one base name": (
        lambda p, c: build_source_bundle(
            "train.py",
            "src",
            ["lib/common", "src/agents/../../lib/common"],
            base_dir=p,
            cache_dir=c,
        ),
        ["'common' is claimed by", "dependencies"],
    ),
    "dependency collides with the lone entry point": (
        lambda p, c: build_source_bundle(
            "src/train.py", dependencies=["src/train.py"], base_dir=p, cache_dir=c
        ),
        ["'train.py' is claimed by", "entry_point", "dependencies"],
    ),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_invalid_input_is_reported_at_synth_time(tmp_path: Path, case: str) -> None:
    call, fragments = ERROR_CASES[case]
    message = _error(tmp_path, lambda project: call(project, tmp_path / "cache"))
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "Allowed:" in message and "See " in message


def test_broken_symlink_is_an_error(tmp_path: Path) -> None:
    project = _make_project(tmp_path / "project")
    (project / "src" / "agents" / "dangling.py").symlink_to(tmp_path / "missing.py")
    with pytest.raises(ValidationError, match=r"broken link .*missing\.py"):
        build_source_bundle("train.py", "src", base_dir=project, cache_dir=tmp_path / "c")


def test_symlink_cycle_is_an_error(tmp_path: Path) -> None:
    project = _make_project(tmp_path / "project")
    (project / "src" / "agents" / "loop").symlink_to(project / "src", target_is_directory=True)
    with pytest.raises(ValidationError, match="link cycles"):
        build_source_bundle("train.py", "src", base_dir=project, cache_dir=tmp_path / "c")


def test_special_files_are_an_error(tmp_path: Path) -> None:
    project = _make_project(tmp_path / "project")
    os.mkfifo(project / "src" / "pipe")
    with pytest.raises(ValidationError, match=r"pipe'.*FIFOs"):
        build_source_bundle("train.py", "src", base_dir=project, cache_dir=tmp_path / "c")


def _synth_asset(bundle: SourceBundle, outdir: Path) -> tuple[str, bytes]:
    """Synth a one-asset stack; return the asset's S3 object key and the staged file's bytes."""
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "Code")
    asset = TrainingSource(stack, "SourceDir", bundle=bundle).asset
    cdk.CfnWaitConditionHandle(stack, "Placeholder")
    cdk.CfnOutput(stack, "Uri", value=asset.s3_object_url)
    assembly = app.synth()
    manifest = json.loads((outdir / "Code.assets.json").read_text())
    entries = [
        entry
        for entry in manifest["files"].values()
        if entry["source"]["path"] != "Code.template.json"
    ]
    assert len(entries) == 1
    assert entries[0]["source"]["packaging"] == "file"
    (destination,) = entries[0]["destinations"].values()
    object_key: str = destination["objectKey"]
    # The template must point at exactly that object.
    uri = json.dumps(assembly.get_stack_by_name("Code").template["Outputs"]["Uri"])
    assert "/" + object_key in uri
    return object_key, (outdir / entries[0]["source"]["path"]).read_bytes()


def test_asset_hash_is_the_same_across_synths_of_equal_trees(tmp_path: Path) -> None:
    first = _make_project(tmp_path / "x" / "one", file_mode=0o600)
    second = _make_project(tmp_path / "y" / "two", file_mode=0o664, reverse=True)
    os.utime(second / "src" / "train.py", (1_000_000_000, 1_000_000_000))
    one = build_source_bundle("train.py", "src", base_dir=first, cache_dir=tmp_path / "c1")
    two = build_source_bundle("train.py", "src", base_dir=second, cache_dir=tmp_path / "c2")

    key_one, staged_one = _synth_asset(one, tmp_path / "out1")
    key_two, staged_two = _synth_asset(two, tmp_path / "out2")
    assert key_one == key_two
    assert staged_one == staged_two == Path(one.path).read_bytes()

    (second / "src" / "train.py").write_text("print('other')\n")
    changed = build_source_bundle("train.py", "src", base_dir=second, cache_dir=tmp_path / "c2")
    key_changed, _ = _synth_asset(changed, tmp_path / "out3")
    assert key_changed != key_one


def test_archive_extracts_cleanly_with_the_data_filter(tmp_path: Path) -> None:
    """The container extracts with tarfile; the strictest stdlib filter must accept every member."""
    project = _make_project(tmp_path / "project")
    bundle = build_source_bundle(
        "train.py", "src", ["lib/common"], base_dir=project, cache_dir=tmp_path / "c"
    )
    target = tmp_path / "opt-ml-code"
    with tarfile.open(fileobj=io.BytesIO(Path(bundle.path).read_bytes()), mode="r:gz") as tar:
        tar.extractall(target, filter="data")
    assert (target / "train.py").read_text() == "import agents\nprint('train')\n"
    assert (target / "common" / "util.py").is_file()
    assert os.access(target / "run.sh", os.X_OK)
