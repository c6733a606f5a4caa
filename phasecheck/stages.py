"""Named stages of a run (load, sample, grade, check, verdict, report, gate): `--debug` logs each one,
and an unexpected exception carries the name of the innermost stage it escaped, for the one-line error."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["stage", "stage_of", "log"]

log = logging.getLogger("phasecheck")
_ATTR = "_phasecheck_stage"


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time and log one stage; an exception leaving it is tagged with `name` unless an inner stage was."""
    log.debug("stage %s: start", name)
    t0 = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        if getattr(exc, _ATTR, None) is None:
            try:
                setattr(exc, _ATTR, name)
            except AttributeError:  # an exception type with __slots__; the stage goes unnamed
                pass
        log.debug("stage %s: failed after %.2f s (%s)", name, time.perf_counter() - t0, type(exc).__name__)
        raise
    log.debug("stage %s: done in %.2f s", name, time.perf_counter() - t0)


def stage_of(exc: BaseException) -> str | None:
    """The innermost stage `exc` escaped, or None when it was raised outside every stage."""
    return getattr(exc, _ATTR, None)
