"""A forward of a module that runs none of the hooks registered on it or its submodules: the
probe's copy and the estimate's fake forward are not the user's forward, so the user's hooks
(and describe_pass's) must not see them."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn

HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs",
              "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called")


@contextmanager
def hooks_suspended(module: nn.Module) -> Iterator[None]:
    """Every module's hook dicts emptied for the duration, then put back as they were."""
    saved = []
    for m in module.modules():
        for attribute in HOOK_DICTS:
            if hasattr(m, attribute):
                saved.append((m, attribute, getattr(m, attribute)))
                setattr(m, attribute, type(getattr(m, attribute))())
    try:
        yield
    finally:
        for m, attribute, value in saved:
            setattr(m, attribute, value)
