"""Wherever convscope runs the user's forward (its estimate, the one shot, streamed blocks, the
chunk debugger): inside user_code_contained (std streams and sys.modules kept), and whatever it
raises one line naming the config key, and where in the model it raised when a traced forward
knows. Only the user's calls go inside: convscope's own logging between them must find the
streams the user's code may have closed already restored.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

from convscope.errors import ConvscopeError
from convscope.stack.analysis import ForwardFailed
from convscope.stack.user_streams import user_code_contained

MAX_MESSAGE = 400  # characters of the user's exception message kept in the one error line
T = TypeVar("T")


def user_exception_text(exc: BaseException, first_line: bool = False) -> str:
    if isinstance(exc, SystemExit):  # the user's code tried to end the process
        return f"SystemExit (sys.exit({exc.code!r}) in the user's code)"
    message = str(exc).strip()
    if first_line:
        message = message.splitlines()[0] if message else ""
    message = " ".join(message.split())
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "..."
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


@contextmanager
def users_code(key: str, target: str, shape: list[int]) -> Iterator[None]:
    """Run the user's code in the block: contained, its exceptions one line naming `key`."""
    try:
        with user_code_contained():
            yield
    except ForwardFailed as exc:  # worded with the key, and where in the model it raised
        raise _raised_in(key, target, exc, shape) from exc
    except KeyboardInterrupt:
        raise
    except ConvscopeError as exc:
        if isinstance(exc.__cause__, ForwardFailed):  # the estimate's small traced forward
            raise _raised_in(key, target, exc.__cause__, shape) from exc
        raise
    except BaseException as exc:  # SystemExit, GeneratorExit, ... included
        raise ConvscopeError(f"{key}: {target} raised {user_exception_text(exc)} on an input "
                             f"of shape {shape}") from exc


def users_iteration(items: Iterable[T], key: str, target: str, shape: list[int]) -> Iterator[T]:
    """`items` (a generator running the user's forward per block), each step contained: what the
    consumer does between steps (logging, writing) runs outside."""
    iterator = iter(items)
    while True:
        with users_code(key, target, shape):
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


def _raised_in(key: str, target: str, exc: ForwardFailed, shape: list[int]) -> ConvscopeError:
    return ConvscopeError(f"{key}: {target} raised {user_exception_text(exc.original)} in "
                          f"{exc.where} on an input of shape {shape}")
