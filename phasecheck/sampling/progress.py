"""Sampling progress: a tqdm bar with samples/s and tokens/s on a terminal, periodic plain log
lines on stderr in CI (CI=true) or when stderr is not a TTY."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

__all__ = ["Progress", "make_progress"]


class Progress:
    """Counts samples and tokens; renders as a bar (tty) or as a log line every `interval` seconds."""

    def __init__(
        self, total: int, *, desc: str = "sampling", bar: bool, interval: float = 10.0, stream: TextIO | None = None
    ) -> None:
        self.total, self.desc, self.interval = total, desc, interval
        self.stream = stream or sys.stderr
        self.samples = self.tokens = self.cached = 0
        self.start = self._last_log = time.monotonic()
        self._gen_tokens = 0
        self._bar = None
        if bar:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="sample", file=self.stream, dynamic_ncols=True)

    def rates(self) -> tuple[float, float]:
        """(samples/s, tokens/s) over generated (not cached) work."""
        dt = max(time.monotonic() - self.start, 1e-9)
        return (self.samples - self.cached) / dt, self._gen_tokens / dt

    def update(self, samples: int, tokens: int, *, cached: bool = False) -> None:
        self.samples += samples
        self.tokens += tokens
        if cached:
            self.cached += samples
        else:
            self._gen_tokens += tokens
        if self._bar is not None:
            self._bar.update(samples)
            self._bar.set_postfix_str(self._speed(), refresh=False)
        elif time.monotonic() - self._last_log >= self.interval or self.samples >= self.total:
            self._log()

    def _log(self) -> None:
        self._last_log = time.monotonic()
        pct = 100.0 * self.samples / self.total if self.total else 100.0
        print(
            f"{self.desc}: {self.samples}/{self.total} samples ({pct:.0f}%), {self._speed()}",
            file=self.stream,
            flush=True,
        )

    def _speed(self) -> str:
        """Rates over generated work; a cached share is named rather than diluting the rates."""
        cached = f"{self.cached} from cache" if self.cached else ""
        if self.samples == self.cached:
            return cached
        sps, tps = self.rates()
        return ", ".join(filter(None, [cached, f"{sps:.1f} samples/s, {tps:.0f} tok/s"]))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def make_progress(
    total: int, enabled: bool | None = None, *, desc: str = "sampling", stream: TextIO | None = None
) -> Progress | None:
    """None when disabled; a bar on an interactive terminal, log lines in CI or when piped.
    `enabled=None` means on (bar or log lines chosen from the environment)."""
    if enabled is False:
        return None
    stream = stream or sys.stderr
    ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    interval = float(os.environ.get("PHASECHECK_LOG_INTERVAL", "10"))
    bar = not ci and hasattr(stream, "isatty") and stream.isatty()
    return Progress(total, desc=desc, bar=bar, interval=interval, stream=stream)
