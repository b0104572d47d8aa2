"""Misspelt keyword arguments as a ValidationError that lists the ones that exist.

Python's own ``TypeError: got an unexpected keyword argument`` names the mistake but not the
options, and users of a 40-argument constructor need the options. The wrapped function keeps
its typed signature, so type checkers still see every parameter.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from .errors import invalid

P = ParamSpec("P")
R = TypeVar("R")
_NOT_OPTIONS = frozenset({"self", "scope", "construct_id", "cls"})


def named_options(see: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        parameters = inspect.signature(function).parameters
        options = sorted(name for name in parameters if name not in _NOT_OPTIONS)
        name = function.__qualname__.replace(".__init__", "")

        @functools.wraps(function)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            for key in kwargs:
                if key not in parameters:
                    raise invalid(f"{name}() option", key, options, see=see)
            return function(*args, **kwargs)

        return checked

    return decorate
