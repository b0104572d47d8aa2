"""Endpoints served on this machine: one model server per endpoint, swapped on update.

moto answers InvokeEndpoint with canned results and lacks UpdateEndpoint. Here CreateEndpoint and
UpdateEndpoint start a :class:`cdk_sagemaker_rl.local.model_server.LocalModelServer` (endpoint
config -> first production variant -> model -> primary container's ModelDataUrl, downloaded from
the emulated S3, and Environment): ``Creating`` -> ``InService``, or ``Failed`` with the reason;
an update swaps servers once the new one answers ``/ping``; DeleteEndpoint stops the server.
Endpoints that CloudFormation creates or updates wait for ``InService``, as CloudFormation does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from ..runtime import LOG, context
from .role_s3 import s3_as

__all__ = ["detach_all", "install", "server_of", "snapshot"]

#: How long a model server may take to answer ``/ping`` (loading torch alone takes seconds).
ENDPOINT_START_TIMEOUT = 300.0

#: How long CloudFormation waits for an endpoint to leave Creating/Updating.
CFN_ENDPOINT_TIMEOUT = 3600.0


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Serving:
    """The model server behind one endpoint, and the generation of its latest deployment."""

    server: Any = None
    generation: int = 0
    config_name: str = ""


_serving: dict[tuple[str, str, str], _Serving] = {}
#: Guards ``_serving`` and ``_starting``: requests, deployments, invocations and the emulator's
#: stop use them at once.
_lock = threading.Lock()
#: Model servers whose start() is still running: the emulator's stop stops them too (no
#: orphans, see :func:`detach_all`).
_starting: set[Any] = set()


def _model_container(backend: Any, config_name: str) -> tuple[str, str, dict[str, Any]]:
    """The model name, its execution role and the container behind an endpoint config's first
    production variant."""
    config = backend.endpoint_configs[config_name]
    variants = config.production_variants or []
    if not variants:
        raise RuntimeError(f"endpoint config {config_name} has no production variants")
    model_name = variants[0]["ModelName"]
    model = backend._models.get(model_name)
    if model is None:
        raise RuntimeError(f"Could not find model {model_name!r}")
    container = model.primary_container or (model.containers[0] if model.containers else None)
    if not container:
        raise RuntimeError(f"model {model_name} has no container")
    return model_name, str(model.execution_role_arn or ""), dict(container)


def _start_server(backend: Any, endpoint_name: str, config_name: str, generation: int) -> Any:
    """Download the model data and start a model server; raises with a FailureReason."""
    from cdk_sagemaker_rl.local.model_server import LocalModelServer

    ctx = context()
    model_name, role_arn, container = _model_container(backend, config_name)
    s3 = s3_as(role_arn)
    model_url = container.get("ModelDataUrl")
    if not model_url:
        raise RuntimeError(
            f"model {model_name} has no ModelDataUrl: local mode serves model.tar.gz artifacts only"
        )
    work = ctx.state_dir / "endpoints" / endpoint_name / str(generation)
    work.mkdir(parents=True, exist_ok=True)
    model_path = work / "model.tar.gz"
    bucket, _, key = str(model_url).removeprefix("s3://").partition("/")
    try:
        s3.download_file(bucket, key, str(model_path))
    except Exception as exc:
        raise RuntimeError(f"Failed to download model data from {model_url}: {exc}") from exc
    environment = {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}
    server = LocalModelServer(
        model_data=Path(model_path),
        environment=environment,
        s3=s3,
        work_dir=work / "server",
    )
    with _lock:
        if ctx.shutdown.is_set():
            raise RuntimeError("the emulator is stopping")
        _starting.add(server)
    try:
        server.start(timeout=ENDPOINT_START_TIMEOUT)
    finally:
        with _lock:
            _starting.discard(server)
    return server


def _deploy(
    backend: Any, endpoint_name: str, config_name: str, generation: int, update: bool
) -> None:
    key = (backend.account_id, backend.region_name, endpoint_name)
    try:
        server = _start_server(backend, endpoint_name, config_name, generation)
    except Exception as exc:
        reason = f"{exc}"
        LOG.warning("endpoint %s: deployment of %s failed: %s", endpoint_name, config_name, reason)
        with _lock:
            serving = _serving.get(key)
            endpoint = backend.endpoints.get(endpoint_name)
            if serving is None or serving.generation != generation or endpoint is None:
                return
            endpoint.failure_reason = reason
            endpoint.endpoint_status = "InService" if update and serving.server else "Failed"
            endpoint.last_modified_time = _now()
        return
    old = None
    with _lock:
        serving = _serving.get(key)
        endpoint = backend.endpoints.get(endpoint_name)
        current = serving is not None and serving.generation == generation and endpoint is not None
        if current:
            assert serving is not None
            old, serving.server, serving.config_name = serving.server, server, config_name
            endpoint.endpoint_status = "InService"
            endpoint.failure_reason = None
            endpoint.endpoint_config_name = config_name
            endpoint.last_modified_time = _now()
    if not current:
        server.stop()  # the endpoint was deleted or redeployed meanwhile
        return
    LOG.info("endpoint %s: InService at %s (%s)", endpoint_name, server.url, config_name)
    if old is not None:
        old.stop()


def _launch(backend: Any, endpoint_name: str, config_name: str, update: bool) -> None:
    key = (backend.account_id, backend.region_name, endpoint_name)
    with _lock:
        serving = _serving.setdefault(key, _Serving())
        serving.generation += 1
        generation = serving.generation
    threading.Thread(
        target=_deploy,
        args=(backend, endpoint_name, config_name, generation, update),
        name=f"endpoint-{endpoint_name}",
        daemon=True,
    ).start()


def _create_endpoint(original: Any) -> Any:
    def create_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str, tags: Any) -> Any:
        from moto.sagemaker.exceptions import ValidationError
        from moto.sagemaker.models import FakeEndpoint

        if endpoint_name in self.endpoints:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f'Cannot create already existing endpoint "{arn}".')
        endpoint = original(self, endpoint_name, endpoint_config_name, tags)
        endpoint.endpoint_status = "Creating"
        _launch(self, endpoint_name, endpoint_config_name, update=False)
        return endpoint

    return create_endpoint


def _update_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str) -> Any:
    """``UpdateEndpoint``: deploy the new config next to the old one, then swap."""
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig

    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.")
    if endpoint_config_name not in self.endpoint_configs:
        arn = FakeEndpointConfig.arn_formatter(
            endpoint_config_name, self.account_id, self.region_name
        )
        raise ValidationError(message=f"Could not find endpoint configuration '{arn}'.")
    if endpoint.endpoint_status not in ("InService", "Failed"):
        raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
    update = endpoint.endpoint_status == "InService"
    endpoint.endpoint_status = "Updating"
    endpoint.last_modified_time = _now()
    _launch(self, endpoint_name, endpoint_config_name, update=update)
    return endpoint


def _update_endpoint_action(self: Any) -> Any:
    from moto.core.responses import ActionResult

    endpoint = self.sagemaker_backend.update_endpoint(
        self._get_param("EndpointName"), self._get_param("EndpointConfigName")
    )
    return ActionResult({"EndpointArn": endpoint.arn})


def _delete_endpoint(original: Any) -> Any:
    def delete_endpoint(self: Any, endpoint_name: str) -> None:
        original(self, endpoint_name)
        with _lock:
            serving = _serving.pop((self.account_id, self.region_name, endpoint_name), None)
        if serving is not None and serving.server is not None:
            LOG.info("endpoint %s deleted: stopping its model server", endpoint_name)
            serving.server.stop()

    return delete_endpoint


def _wait_in_service(backend: Any, endpoint_name: str) -> None:
    """CloudFormation waits for an endpoint to be InService and fails when it is not."""
    from ..cloudformation import ResourceFailedError, current_operation

    op = current_operation()
    endpoint = backend.endpoints[endpoint_name]
    context().wait_for(
        lambda: endpoint.endpoint_status not in ("Creating", "Updating"),
        CFN_ENDPOINT_TIMEOUT,
        cancelled=None if op is None else op.cancelled,
    )
    if endpoint.endpoint_status != "InService":
        raise ResourceFailedError(
            f'Resource handler returned message: "Endpoint {endpoint_name} is in '
            f'{endpoint.endpoint_status} status. Failure reason: {endpoint.failure_reason}"'
        )


def _cfn_create_endpoint(original: Any) -> Any:
    def create_from_cloudformation_json(
        cls: Any,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        endpoint = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        _wait_in_service(sagemaker_backends[account_id][region_name], endpoint.endpoint_name)
        return endpoint

    return classmethod(cast(Any, create_from_cloudformation_json))


def _cfn_update_endpoint(
    cls: Any,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
) -> Any:
    """CloudFormation updates an endpoint in place (UpdateEndpoint), keeping its name."""
    from moto.sagemaker.models import sagemaker_backends

    from ..cloudformation import ResourceFailedError

    backend = sagemaker_backends[account_id][region_name]
    config_name = cloudformation_json["Properties"]["EndpointConfigName"]
    name = original_resource.endpoint_name
    _update_endpoint(backend, name, config_name)
    _wait_in_service(backend, name)
    endpoint = backend.endpoints[name]
    if endpoint.endpoint_config_name != config_name:
        raise ResourceFailedError(
            f'Resource handler returned message: "Endpoint {name} update to {config_name} '
            f'failed: {endpoint.failure_reason}"'
        )
    return endpoint


def server_of(account_id: str, region: str, endpoint_name: str) -> Any:
    """The model server behind an endpoint, None while it has none in service."""
    with _lock:
        serving = _serving.get((account_id, region, endpoint_name))
        return None if serving is None else serving.server


def snapshot() -> list[dict[str, Any]]:
    """The endpoints this emulator serves: name, server URL and deployed config."""
    with _lock:
        return [
            {
                "EndpointName": key[2],
                "Url": serving.server.url if serving.server else None,
                "EndpointConfigName": serving.config_name,
            }
            for key, serving in _serving.items()
        ]


def detach_all() -> list[Any]:
    """Forget every endpoint's server, starting ones included, and return them to be stopped."""
    with _lock:
        servers = [serving.server for serving in _serving.values() if serving.server is not None]
        servers += list(_starting)
        for serving in _serving.values():
            serving.generation += 1  # deployments in flight stop their server themselves
            serving.server = None
        _serving.clear()
    return servers


def install() -> None:
    """Patch moto's endpoint calls and CloudFormation models (called once, by the package)."""
    from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, Model, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    SageMakerResponse.update_endpoint = _update_endpoint_action  # type: ignore[attr-defined]
    SageMakerModelBackend.create_endpoint = _create_endpoint(  # type: ignore[method-assign]
        SageMakerModelBackend.create_endpoint
    )
    SageMakerModelBackend.update_endpoint = _update_endpoint  # type: ignore[attr-defined]
    SageMakerModelBackend.delete_endpoint = _delete_endpoint(  # type: ignore[method-assign]
        SageMakerModelBackend.delete_endpoint
    )
    FakeEndpoint.create_from_cloudformation_json = _cfn_create_endpoint(  # type: ignore[method-assign]
        FakeEndpoint.create_from_cloudformation_json
    )
    FakeEndpoint.update_from_cloudformation_json = classmethod(  # type: ignore[method-assign,assignment]
        _cfn_update_endpoint
    )
    # moto ignores the name properties, so an explicit EndpointName/ModelName was not honoured.
    FakeEndpoint.cloudformation_name_type = staticmethod(lambda: "EndpointName")  # type: ignore[method-assign]
    FakeEndpointConfig.cloudformation_name_type = staticmethod(  # type: ignore[method-assign]
        lambda: "EndpointConfigName"
    )
    Model.cloudformation_name_type = staticmethod(lambda: "ModelName")  # type: ignore[method-assign]
