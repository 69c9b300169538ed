"""Latency budget: pick the token keep schedule per frame from measured step times (issue 18, beyond the paper).

Why per frame: a step's time depends on the machine's load and the event rate as much as on the
network, so a schedule fixed in advance is either too slow under load or wastes accuracy when idle.
:class:`KeepScheduler` is a runner (``evtrack.runtime.runners``) over one graph runner per schedule,
ordered from least to most pruned. After each step the caller reports the step's time with
:meth:`KeepScheduler.record`; the next frame runs the least pruned schedule whose recent
``quantile`` (p99 by default) of step times is within ``margin`` of the budget. Schedules not yet
measured are tried now and then (``probe_every`` frames) when the current one has room to spare.

All pruned graphs of one network carry the same state (scorer memory and keys/values of every
token), so switching between pruned schedules keeps it; switching from a stateless (dense) graph to
a pruned one starts its state afresh (the ``init`` graph recomputes every token's keys/values).
"""

from __future__ import annotations

import collections
import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from evtrack.errors import UserError

DEFAULT_SCHEDULES = ("1.0", "official", "default", "0.3")


@dataclass(frozen=True)
class BudgetConfig:
    """A step-time budget and the keep schedules to choose from (least pruned first)."""

    budget_ms: float
    schedules: tuple[str, ...] = DEFAULT_SCHEDULES
    quantile: float = 0.99  # of the recent step times of a schedule, compared with the budget
    margin: float = 0.9  # use a schedule while that quantile is below margin * budget
    history: int = 64  # recent step times kept per schedule
    min_samples: int = 5  # steps before a schedule's quantile is trusted
    probe_every: int = 25  # frames between tries of a less pruned, unmeasured schedule

    def __post_init__(self) -> None:
        if not self.budget_ms > 0:
            raise UserError(f"latency budget must be > 0 ms, got {self.budget_ms}")
        if not self.schedules:
            raise UserError("latency budget: expected at least one keep schedule")
        if not 0 < self.quantile <= 1 or not 0 < self.margin <= 1:
            raise UserError(f"latency budget: quantile {self.quantile} and margin {self.margin} must be in (0, 1]")


class KeepScheduler:
    """Runner switching between ``runners`` (``[(schedule, GraphRunner)]``, least pruned first)."""

    name = "budget"

    def __init__(self, runners: list[tuple[str, object]], config: BudgetConfig) -> None:
        if not runners:
            raise UserError("latency budget: no runners")
        self.labels = [label for label, _ in runners]
        self.runners = [r for _, r in runners]
        self.config = config
        self.times = [collections.deque(maxlen=config.history) for _ in runners]
        self.current = len(runners) - 1  # start safe (most pruned); relax once measured
        self._active = self.current  # the runner that holds the state
        self._since_probe = 0
        self._cycling = False
        self._backoff = 1  # doubles after each try of a less pruned schedule that went over the limit

    @property
    def current_label(self) -> str:
        return self.labels[self.current]

    @property
    def warm_up_calls(self) -> int:
        """Network calls :meth:`Tracker.warm_up` should make so that every schedule's graphs run once."""
        return 2 * len(self.runners)

    @contextlib.contextmanager
    def warming(self):
        """Within: every call goes to the next schedule in turn (each graph's first, slow call happens
        before tracking); afterwards the schedule and the measured times are as before."""
        saved = self.current
        self._cycling = True
        try:
            yield
        finally:
            self._cycling = False
            self.current = saved
            for t in self.times:
                t.clear()

    # ---- runner protocol
    def template(self, z: torch.Tensor) -> torch.Tensor:
        return self.runners[0].template(z)  # the template branch is the same graph for every schedule

    def search(self, z_feat: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self._cycling:
            self.current = (self.current + 1) % len(self.runners)
        if self.current != self._active:
            old, new = self.runners[self._active], self.runners[self.current]
            same = list(getattr(old, "state_names", [])) == list(getattr(new, "state_names", []))
            new._state = old._state if same else None
            old._state = None
            self._active = self.current
        return self.runners[self.current].search(z_feat, x)

    def reset(self) -> None:
        for r in self.runners:
            r.reset()

    # ---- the controller
    def estimate(self, i: int) -> float | None:
        """The configured quantile of schedule i's recent step times (ms), None while too few."""
        t = self.times[i]
        if len(t) < self.config.min_samples:
            return None
        return float(np.quantile(np.asarray(t), self.config.quantile))

    def record(self, step_ms: float) -> str:
        """Report the step just run (ms, on :attr:`current_label`); returns the schedule of the next frame.

        One step over the limit, or a quantile over it, moves to more pruning at once (and doubles the
        wait before the next try of a less pruned schedule); a less pruned schedule is taken when its
        recent quantile fits, or tried afresh (its old times forgotten) once the wait is over.
        """
        if self._cycling:  # warm-up steps (first calls, compiling) say nothing about the budget
            return self.current_label
        cfg = self.config
        self.times[self.current].append(float(step_ms))
        limit = cfg.margin * cfg.budget_ms
        est = self.estimate(self.current)
        self._since_probe += 1
        if step_ms > limit or (est is not None and est > limit):
            if self.current < len(self.runners) - 1:
                self.current += 1
                self._backoff = min(self._backoff * 2, 8)
                self._since_probe = 0
        elif self.current > 0:
            lighter = self.estimate(self.current - 1)
            if lighter is not None and lighter <= limit:
                self.current -= 1
            elif self._since_probe >= cfg.probe_every * self._backoff:
                self.current -= 1
                self.times[self.current].clear()  # measure it afresh: load may have changed
                self._since_probe = 0
        return self.current_label
