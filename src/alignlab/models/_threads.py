"""Choose torch's intra-op thread count from measured step times.

On a 2-core machine shared with other processes, two OpenMP threads are ~1.5-1.9x faster
than one when the cores are free, and 3-15x slower when another process competes for them
(each parallel region waits at a barrier for a thread that is not scheduled; measured
here: decode 174 vs 2,614 ms/step for the same batch). One thread is never catastrophic.
So the engine measures: it uses the option with the lowest recent step time and re-tries
the others now and then, less often the worse they did.
"""

from __future__ import annotations

import statistics
from collections import deque


class ThreadTuner:
    """Pure bookkeeping (no torch): `choose()` before a step, `record()` after it."""

    def __init__(self, options: list[int], window: int = 8, explore_every: int = 32, max_interval: int = 256):
        self.options = sorted(set(options))
        self.window = window
        self.explore_every = explore_every
        self.max_interval = max_interval
        self.samples: dict[int, deque[float]] = {n: deque(maxlen=window) for n in self.options}
        # steps until each non-best option is tried again; doubles while it keeps losing
        self.interval = {n: explore_every for n in self.options}
        self.due = {n: explore_every for n in self.options}
        self.steps = 0

    @property
    def best(self) -> int:
        measured = [n for n in self.options if self.samples[n]]
        if not measured:
            return self.options[-1]
        return min(measured, key=lambda n: statistics.median(self.samples[n]))

    def for_prefill(self, slack: float = 1.25) -> int:
        """Thread count for prefill, judged from the decode measurements.

        Small decode batches are memory-bound, so one thread may measure as fast as two
        there while prefill, compute-bound, still runs ~2x faster on two. What the decode
        numbers do show reliably is contention (more threads several times slower), so
        prefill uses the most threads that are not clearly slower than the best.
        """
        measured = [n for n in self.options if self.samples[n]]
        if len(measured) < len(self.options):
            return self.options[-1]
        floor = min(statistics.median(self.samples[n]) for n in measured)
        return max(n for n in measured if statistics.median(self.samples[n]) <= slack * floor)

    def choose(self) -> int:
        self.steps += 1
        for n in self.options:  # every option is measured twice before choosing
            if len(self.samples[n]) < 2:
                return n
        best = self.best
        for n in self.options:
            if n != best and self.steps >= self.due[n]:
                return n
        return best

    def record(self, option: int, seconds: float) -> None:
        """`seconds` should be comparable across steps (normalised for batch size)."""
        settled = all(len(self.samples[n]) >= 2 for n in self.options)
        best = self.best
        if not settled or option == best:
            self.samples[option].append(seconds)
            return
        # an exploration step: judge it against the recent median of the option in use
        if seconds < statistics.median(self.samples[best]):
            self.samples[option] = deque([seconds], maxlen=self.window)  # conditions changed
            self.interval[best] = self.explore_every
            self.due[best] = self.steps + self.explore_every
        else:
            self.samples[option].append(seconds)
            self.interval[option] = min(2 * self.interval[option], self.max_interval)
        self.due[option] = self.steps + self.interval[option]
