"""The OpenAPI description of the endpoints, for drf-spectacular when the site has it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

_V = TypeVar("_V", bound=Callable[..., Any])


def documented(
    *, summary: str, responses: Mapping[int, Any], request: Any = None
) -> Callable[[_V], _V]:
    """``extend_schema`` where drf-spectacular is installed; a string response is a description."""
    try:
        from drf_spectacular.utils import OpenApiResponse, extend_schema
    except ImportError:  # the site does not describe its API: nothing to add
        return lambda view: view
    described = {
        code: OpenApiResponse(description=answer) if isinstance(answer, str) else answer
        for code, answer in responses.items()
    }
    return extend_schema(summary=summary, request=request, responses=described)
