"""What a job leaves behind: ``model/`` and ``output/data/`` as tarballs at SageMaker's S3 keys.

A job of several hosts has one ``model/`` per host; they go into the one ``model.tar.gz`` in host
order (a later host's file of the same name wins), so the model is there whichever host saved it
(a Ray job's script runs on the head, which need not be ``algo-1``). ``output/data/`` likewise.

Uploaded when the script completes and also when the job is stopped or runs out of time, as
SageMaker does: whatever the script saved before it was stopped is its model. Local extras (the
reward curve) go next to them; they are conveniences, so failing to upload one is only logged.
"""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..archives import add_tree
from .contract import Layout
from .control import JobFailed
from .job import JobSpec, split_s3_uri
from .job_log import JobLog

__all__ = ["upload_artifacts"]


def upload_artifacts(
    job: JobSpec,
    base: Path,
    layouts: Sequence[Layout],
    s3: Any,
    log: JobLog,
    extras: Sequence[Path] = (),
) -> tuple[str, str]:
    """Upload ``model/`` and ``output/data/`` as SageMaker does, then ``extras`` next to them;
    return the tarballs' S3 URIs."""
    bucket, prefix = split_s3_uri(job.output_path)
    base_key = f"{prefix}/{job.name}/output" if prefix else f"{job.name}/output"
    uris = []
    for sources, name in (
        ([layout.model_dir for layout in layouts], "model.tar.gz"),
        ([layout.output_data_dir for layout in layouts], "output.tar.gz"),
    ):
        archive = base / name
        with tarfile.open(archive, "w:gz") as tar:
            for source in sources:
                add_tree(tar, source)
        what = (
            str(sources[0]) if len(sources) == 1 else f"{sources[0].name}/ of {len(sources)} hosts"
        )
        key = f"{base_key}/{name}"
        try:
            s3.upload_file(str(archive), bucket, key)
        except Exception as error:
            raise JobFailed(
                f"ClientError: could not upload s3://{bucket}/{key}: {error}"
            ) from error
        uris.append(f"s3://{bucket}/{key}")
        log.info(f"Uploaded {what} to s3://{bucket}/{key}")
    for extra in extras:
        key = f"{base_key}/{extra.name}"
        try:
            s3.upload_file(str(extra), bucket, key)
        except Exception as error:
            log.info(f"Could not upload {extra} to s3://{bucket}/{key}: {error}")
            continue
        log.info(f"Uploaded {extra} to s3://{bucket}/{key}")
    return uris[0], uris[1]
