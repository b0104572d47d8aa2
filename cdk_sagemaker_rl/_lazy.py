"""Values rendered when the template is synthesized, for what is only final after construction.

``fit()`` adds channels, ``deploy()`` may switch what the deploy starts, ``Tags.of()`` tags after
the constructs exist: these producers let the request and the IAM statements follow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsii
from aws_cdk import IResolveContext, IStableAnyProducer, IStringProducer


@jsii.implements(IStableAnyProducer)
class Later:
    """A value produced once, at synth (``Lazy.any``)."""

    def __init__(self, produce: Callable[[], Any]) -> None:
        self._produce = produce

    def produce(self) -> Any:
        return self._produce()


@jsii.implements(IStringProducer)
class Current:
    """A string produced at every resolution (``Lazy.uncached_string``): an earlier resolution
    must not stick when the value may still change."""

    def __init__(self, produce: Callable[[], str]) -> None:
        self._produce = produce

    def produce(self, context: IResolveContext) -> str:
        return self._produce()
