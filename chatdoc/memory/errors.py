"""Errors of the memory package."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import redis

F = TypeVar("F", bound=Callable[..., Any])

# Errors that mean "the server cannot be reached right now" (not "the request was wrong").
# redis-py's AuthenticationError and BusyLoadingError (AOF still loading after a restart) are
# subclasses of ConnectionError, so they are covered too.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError)


class StorageUnavailable(RuntimeError):
    """Redis cannot be reached (down, restarting, timing out, refused our password).

    Nothing was written by the failed call; the caller may keep the user's input and retry.
    The message never contains the password or patient data.
    """


def describe(exc: BaseException) -> str:
    """A short, password-free description of a Redis client error."""
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text[:200]}"


def guard(operation: str) -> Callable[[F], F]:
    """Decorator: turn Redis connection/timeouts errors into :class:`StorageUnavailable`."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except StorageUnavailable:
                raise
            except TRANSIENT_ERRORS as e:
                raise StorageUnavailable(f"storage is unavailable ({operation}): {describe(e)}") from e

        return wrapper  # type: ignore[return-value]

    return deco
