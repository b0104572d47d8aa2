"""What a job reads before it runs: its S3 channels into ``input/data/<channel>/`` and its
``sagemaker_submit_directory`` into ``code/``.

SageMaker downloads both before it starts the script (File mode); a job whose data cannot be
downloaded fails as a ``ClientError`` before any user code runs, and so does one here.
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from ..archives import extract_tar_safely, safe_destination
from .contract import Layout
from .control import Guard, JobFailed, JobStopped
from .job import Host, JobSpec, split_s3_uri
from .job_log import JobLog

__all__ = ["download_channels", "fetch_source"]


def _relative_key(prefix: str, key: str) -> str:
    """Where an object of an S3Prefix channel lands, relative to the channel directory.

    The object named by the prefix itself lands under its base name; objects below the prefix keep
    their path below it.
    """
    if key == prefix:
        return PurePosixPath(key).name
    if prefix == "" or prefix.endswith("/"):
        return key[len(prefix) :]
    if key[len(prefix)] == "/":
        return key[len(prefix) + 1 :]
    return key[prefix.rfind("/") + 1 :]


def download_channels(
    job: JobSpec, layout: Layout, s3: Any, log: JobLog, guard: Guard, host: Host | None = None
) -> None:
    """Download the channels ``host`` receives (all of them for a one-host job)."""
    if job.input_mode == "Pipe" or any(
        c.config["TrainingInputMode"] == "Pipe" for c in job.channels
    ):
        raise JobFailed(
            "ClientError: TrainingInputMode Pipe is not supported in local mode; "
            "use File or FastFile"
        )
    for channel in job.channels if host is None else job.channels_for(host):
        data_type = channel.config["S3DataType"]
        if data_type != "S3Prefix" or not channel.s3_uri:
            raise JobFailed(
                f"ClientError: channel {channel.name!r}: local mode downloads S3DataSource "
                "channels "
                f"with S3DataType S3Prefix only (got {data_type!r}, S3Uri {channel.s3_uri!r})"
            )
        target = layout.data_dir / channel.name
        target.mkdir(parents=True, exist_ok=True)
        count = 0
        try:
            bucket, prefix = split_s3_uri(channel.s3_uri)
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    guard.check()
                    key = obj["Key"]
                    if key.endswith("/"):
                        continue
                    destination = safe_destination(target, _relative_key(prefix, key))
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, key, str(destination))
                    count += 1
        except (JobStopped, JobFailed):
            raise
        except Exception as error:
            raise JobFailed(
                f"ClientError: Data download failed: channel {channel.name!r} "
                f"({channel.s3_uri}): {error}"
            ) from error
        if count == 0:
            raise JobFailed(
                f"ClientError: Data download failed: no objects under {channel.s3_uri} "
                f"(channel {channel.name!r})"
            )
        log.info(f"Downloaded {count} object(s) of channel {channel.name!r} to {target}")


def fetch_source(job: JobSpec, layout: Layout, s3: Any, log: JobLog) -> None:
    """Put ``sagemaker_submit_directory`` (s3:// or local tar.gz, or a local dir) into ``code/``."""
    if job.program is None or job.submit_directory is None:
        raise JobFailed(
            "ClientError: local mode runs script-mode jobs only: the hyperparameters must hold "
            "sagemaker_program and sagemaker_submit_directory (the training image "
            "itself is not run on this machine)"
        )
    source = job.submit_directory
    try:
        if source.startswith("s3://"):
            bucket, key = split_s3_uri(source)
            archive = layout.base / "sourcedir.tar.gz"
            s3.download_file(bucket, key, str(archive))
            extract_tar_safely(archive, layout.code_dir)
        else:
            local = Path(source.removeprefix("file://"))
            if local.is_dir():
                shutil.copytree(local, layout.code_dir, dirs_exist_ok=True)
            else:
                extract_tar_safely(local, layout.code_dir)
    except Exception as error:
        raise JobFailed(
            f"AlgorithmError: could not fetch sagemaker_submit_directory {source}: {error}"
        ) from error
    if not (layout.code_dir / job.program).is_file():
        present = sorted(p.name for p in layout.code_dir.iterdir())
        raise JobFailed(
            f"AlgorithmError: entry point {job.program!r} is not in {source} "
            f"(it holds: {', '.join(present) or 'nothing'})"
        )
    log.info(f"Extracted {source} to {layout.code_dir}")
