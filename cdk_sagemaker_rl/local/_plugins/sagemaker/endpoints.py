"""Endpoints served on this machine: one model server per endpoint, replaced on update.

A deployment (CreateEndpoint, UpdateEndpoint) downloads the model of the config's first
production variant (its primary container's ModelDataUrl, from the emulated S3, as the model's
execution role) and starts a :class:`cdk_sagemaker_rl.local.model_server.LocalModelServer` for it:
``Creating`` -> ``InService``, or ``Failed`` with the reason. An update is SageMaker's blue/green
with all traffic shifted at once: the old server keeps answering until the new one answers
``/ping``, then invocations go to the new one and the old one stops once the requests it is
answering are done, so an update loses no request. A new model that does not load fails the
update: the endpoint stays ``InService`` on its old config and server, with the container's own
error (the exception its ``model_fn`` raised) in ``FailureReason``.

Whatever the variant's instance count, one server serves the endpoint: instance counts, weights,
traffic shifting steps, baking periods and alarms are bookkept (see :mod:`.endpoint_api`), not
emulated.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..runtime import LOG, context
from . import capture
from .capture import CaptureSettings
from .role_s3 import s3_as
from .variants import capture_summary

__all__ = [
    "Deployment",
    "Route",
    "current_capture_config",
    "detach_all",
    "forget",
    "launch",
    "lease",
    "snapshot",
]

#: How long a model server may take to answer ``/ping`` when the variant does not say
#: (``ContainerStartupHealthCheckTimeoutInSeconds``); loading torch alone takes seconds.
ENDPOINT_START_TIMEOUT = 300.0

#: How long an old server may finish the requests it is answering before it is stopped anyway
#: (SageMaker gives an invocation 60 s).
DRAIN_TIMEOUT = 60.0

#: DescribeEndpoint's FailureReason holds at most 1024 characters.
FAILURE_REASON_MAX_CHARS = 1024


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Route:
    """A model server in service and what an invocation of it needs: the variant it stands for
    and the capture settings of its deployment. Counts the requests in flight, so that a
    replaced server is stopped only once it answered them."""

    server: Any
    variant_name: str
    capture: CaptureSettings | None
    inflight: int = 0
    idle: threading.Condition = field(default_factory=threading.Condition)

    def drain_and_stop(self, timeout: float = DRAIN_TIMEOUT) -> None:
        with self.idle:
            self.idle.wait_for(lambda: self.inflight == 0, timeout)
        self.server.stop()


@dataclass
class Deployment:
    """One CreateEndpoint or UpdateEndpoint: what it deploys and, once ``done``, how it went.

    ``variants`` and ``capture_config`` are what DescribeEndpoint shows once it succeeded (the
    retained properties of an update already applied); ``error`` is the FailureReason of a
    failed one and ``seconds`` how long it took either way.
    """

    config_name: str
    update: bool
    variants: list[dict[str, Any]]
    capture_config: dict[str, Any]
    deployment_config: dict[str, Any] | None = None
    generation: int = 0
    started: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None
    seconds: float | None = None


@dataclass
class _Serving:
    """What serves one endpoint, and the generation of its latest deployment."""

    route: Route | None = None
    generation: int = 0
    config_name: str = ""
    capture_config: dict[str, Any] = field(default_factory=dict)


_serving: dict[tuple[str, str, str], _Serving] = {}
#: Guards ``_serving``, ``_starting`` and ``_draining``: requests, deployments, invocations and
#: the emulator's stop use them at once.
_lock = threading.Lock()
#: Model servers whose start() is still running, and replaced ones finishing their requests:
#: the emulator's stop stops them too (no orphans, see :func:`detach_all`).
_starting: set[Any] = set()
_draining: set[Any] = set()


def _model_of(backend: Any, config_name: str) -> tuple[dict[str, Any], str, str, dict[str, Any]]:
    """The first production variant of a config, its model's name and execution role, and the
    model's primary container."""
    config = backend.endpoint_configs[config_name]
    variants = config.production_variants or []
    if not variants:
        raise RuntimeError(f"endpoint config {config_name} has no production variants")
    variant = dict(variants[0])
    model_name = variant["ModelName"]
    model = backend._models.get(model_name)
    if model is None:
        raise RuntimeError(f"Could not find model {model_name!r}")
    container = model.primary_container or (model.containers[0] if model.containers else None)
    if not container:
        raise RuntimeError(f"model {model_name} has no container")
    return variant, model_name, str(model.execution_role_arn or ""), dict(container)


def _start_route(backend: Any, endpoint_name: str, deployment: Deployment) -> Route:
    """Download the model data and start its server; raises with a FailureReason."""
    from cdk_sagemaker_rl.local.model_server import LocalModelServer, ModelServerError

    ctx = context()
    variant, model_name, role_arn, container = _model_of(backend, deployment.config_name)
    variant_name = str(variant.get("VariantName", "AllTraffic"))
    s3 = s3_as(role_arn)
    model_url = container.get("ModelDataUrl")
    if not model_url:
        raise RuntimeError(
            f"model {model_name} has no ModelDataUrl: local mode serves model.tar.gz artifacts only"
        )
    work = ctx.state_dir / "endpoints" / endpoint_name / str(deployment.generation)
    work.mkdir(parents=True, exist_ok=True)
    model_path = work / "model.tar.gz"
    bucket, _, key = str(model_url).removeprefix("s3://").partition("/")
    try:
        s3.download_file(bucket, key, str(model_path))
    except Exception as exc:
        raise RuntimeError(f"Failed to download model data from {model_url}: {exc}") from exc
    environment = {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}
    server = LocalModelServer(
        model_data=Path(model_path), environment=environment, s3=s3, work_dir=work / "server"
    )
    timeout = float(
        variant.get("ContainerStartupHealthCheckTimeoutInSeconds") or ENDPOINT_START_TIMEOUT
    )
    with _lock:
        if ctx.shutdown.is_set():
            raise RuntimeError("the emulator is stopping")
        _starting.add(server)
    try:
        server.start(timeout=timeout)
    except ModelServerError as exc:
        if not exc.log_tail:
            raise
        head = (
            f"The primary container for production variant {variant_name} did not pass the "
            f"ping health check"
        )
        # The container's own error when its log has one, else what the server process did.
        head += f": {exc.error or str(exc).splitlines()[0].split(' (model ')[0]}"
        raise RuntimeError(_fit(head, f"Last lines of its log:\n{exc.log_tail}")) from exc
    finally:
        with _lock:
            _starting.discard(server)
    settings = CaptureSettings.from_config(deployment.capture_config, role_arn)
    return Route(server, variant_name, settings)


def _fit(head: str, detail: str, limit: int = FAILURE_REASON_MAX_CHARS) -> str:
    """``head`` whole (the container's error), then as much of the end of ``detail`` as fits."""
    if len(head) >= limit - 5:
        return head[: limit - 3] + "..."
    room = limit - len(head) - 1
    if len(detail) > room:
        detail = "..." + detail[-(room - 3) :]
    return f"{head}\n{detail}"


def _deploy(backend: Any, endpoint_name: str, deployment: Deployment) -> None:
    key = (backend.account_id, backend.region_name, endpoint_name)
    try:
        route = _start_route(backend, endpoint_name, deployment)
    except Exception as exc:
        reason = str(exc)[:FAILURE_REASON_MAX_CHARS] or type(exc).__name__
        rolled_back = ""
        with _lock:
            serving = _serving.get(key)
            endpoint = backend.endpoints.get(endpoint_name)
            if serving is not None and serving.generation == deployment.generation and endpoint:
                if deployment.update and serving.route is not None:
                    rolled_back = serving.config_name
                endpoint.failure_reason = reason
                endpoint.endpoint_status = "InService" if rolled_back else "Failed"
                endpoint.pending_deployment_summary = None
                endpoint.last_modified_time = now()
        _finish(deployment, reason)
        LOG.warning(
            "endpoint %s: deployment of %s failed after %.2f s%s: %s",
            endpoint_name,
            deployment.config_name,
            deployment.seconds,
            f"; still InService on {rolled_back}" if rolled_back else "",
            reason,
        )
        return
    # What the old deployment captured is written before the update completes, under its own
    # settings (an invocation still answered by it meanwhile waits for the next flush).
    capture.flush(endpoint_name)
    old = None
    with _lock:
        serving = _serving.get(key)
        endpoint = backend.endpoints.get(endpoint_name)
        current = serving is not None and serving.generation == deployment.generation
        if current and endpoint is not None:
            assert serving is not None
            old, serving.route = serving.route, route
            serving.config_name = deployment.config_name
            serving.capture_config = deployment.capture_config
            endpoint.endpoint_status = "InService"
            endpoint.failure_reason = None
            endpoint.endpoint_config_name = deployment.config_name
            endpoint.production_variants = deployment.variants
            endpoint.data_capture_config = capture_summary(deployment.capture_config)
            endpoint.pending_deployment_summary = None
            if deployment.deployment_config is not None:
                endpoint.last_deployment_config = deployment.deployment_config
            endpoint.last_modified_time = now()
            if old is not None:
                _draining.add(old.server)
        else:
            current = False
    if not current:
        route.server.stop()  # the endpoint was deleted or redeployed meanwhile
        _finish(deployment, "the endpoint was deleted or updated again meanwhile")
        return
    _finish(deployment, None)
    LOG.info(
        "endpoint %s: InService at %s (%s) after %.2f s",
        endpoint_name,
        route.server.url,
        deployment.config_name,
        deployment.seconds,
    )
    if old is not None:
        old.drain_and_stop()
        with _lock:
            _draining.discard(old.server)


def _finish(deployment: Deployment, error: str | None) -> None:
    deployment.error = error
    deployment.seconds = time.monotonic() - deployment.started
    deployment.done.set()


def launch(backend: Any, endpoint_name: str, deployment: Deployment) -> Deployment:
    """Start ``deployment`` in a background thread; it supersedes any deployment in flight."""
    key = (backend.account_id, backend.region_name, endpoint_name)
    with _lock:
        serving = _serving.setdefault(key, _Serving())
        serving.generation += 1
        deployment.generation = serving.generation
    threading.Thread(
        target=_deploy,
        args=(backend, endpoint_name, deployment),
        name=f"endpoint-{endpoint_name}",
        daemon=True,
    ).start()
    return deployment


@contextlib.contextmanager
def lease(account_id: str, region: str, endpoint_name: str) -> Iterator[Route | None]:
    """The route an invocation uses, None while the endpoint has no server in service; its
    server is not stopped before the invocation is done with it."""
    with _lock:
        serving = _serving.get((account_id, region, endpoint_name))
        route = None if serving is None else serving.route
        if route is not None:
            with route.idle:
                route.inflight += 1
    try:
        yield route
    finally:
        if route is not None:
            with route.idle:
                route.inflight -= 1
                route.idle.notify_all()


def current_capture_config(account_id: str, region: str, endpoint_name: str) -> dict[str, Any]:
    """The capture settings of the deployment in service (what a retaining update keeps)."""
    with _lock:
        serving = _serving.get((account_id, region, endpoint_name))
        return dict(serving.capture_config) if serving is not None else {}


def forget(account_id: str, region: str, endpoint_name: str) -> None:
    """DeleteEndpoint: write what was captured, then stop the server once its requests are done."""
    with _lock:
        serving = _serving.pop((account_id, region, endpoint_name), None)
        route = None if serving is None else serving.route
        if route is not None:
            _draining.add(route.server)
    capture.flush(endpoint_name)
    if route is not None:
        LOG.info("endpoint %s deleted: stopping its model server", endpoint_name)
        route.drain_and_stop()
        with _lock:
            _draining.discard(route.server)


def snapshot() -> list[dict[str, Any]]:
    """The endpoints this emulator serves: name, server URL and deployed config."""
    with _lock:
        return [
            {
                "EndpointName": key[2],
                "Url": serving.route.server.url if serving.route else None,
                "EndpointConfigName": serving.config_name,
            }
            for key, serving in _serving.items()
        ]


def detach_all() -> list[Any]:
    """Forget every endpoint's server, starting and draining ones included, and return them to
    be stopped."""
    with _lock:
        servers = [s.route.server for s in _serving.values() if s.route is not None]
        servers += list(_starting) + list(_draining)
        for serving in _serving.values():
            serving.generation += 1  # deployments in flight stop their server themselves
            serving.route = None
        _serving.clear()
    return servers
