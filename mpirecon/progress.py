"""Minimal progress reporting to stderr (a bar on terminals, plain lines otherwise)."""
from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total, "label") as p: p.update(n, loss=...)``; silent if ``enabled`` is False."""

    def __init__(self, total: int, label: str = "", enabled: bool = True, stream=None):
        self.total = max(int(total), 1)
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self.start = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def update(self, n: int = 1, **info) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if not self.tty and self.done < self.total and now - self._last < 30:
            return
        self._last = now
        frac = self.done / self.total
        elapsed = now - self.start
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        extra = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
        bar = "#" * int(24 * frac)
        line = f"{self.label} [{bar:<24}] {self.done}/{self.total} {elapsed:5.0f}s eta {eta:4.0f}s {extra}"
        if self.tty:
            self.stream.write("\r" + line[:150])
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        if self.enabled:
            self.stream.write(("\n" if self.tty else "") + text + "\n")
            self.stream.flush()
