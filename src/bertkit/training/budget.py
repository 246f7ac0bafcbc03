"""Training for a length of time instead of a number of steps (`--time-budget 10m`).

A fixed step count is a guess about the machine: too few steps leave a fast GPU idle at the
end of the schedule, too many make a laptop run for hours.  With a time budget (as in
Cramming, Geiping & Goldstein 2022) the learning-rate schedule runs on the clock:

    fraction f = seconds spent / seconds of the budget          (0 → 1)
    LR = peak × f / w               while f < w   (w: warmup_ratio)
    LR = peak × (1 − f) / (1 − w)   after, reaching 0 as the budget ends

and training stops when f reaches 1 (or at --steps, when given, if that comes first), so the
whole budget is used whatever the machine's speed.  The final evaluation and the model's
saving come after the budget.  The seconds spent are saved in every checkpoint: a resumed run
goes on with what is left of the budget.

Several processes (torchrun) must use the same learning rate at every step, but their clocks
differ by a few milliseconds.  So they agree on rank 0's clock (one tiny all-reduce) at the
first steps and at every log step, and between two agreements each process extrapolates the
clock by the agreed pace (seconds per step): the same numbers everywhere.  One process reads
its clock at every step.
"""
from __future__ import annotations

import math
import re
import time

from bertkit.common.errors import InputError

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|m|min|h)?\s*$")


def parse_duration(text: str | float | int) -> float:
    """Seconds in "90s", "10m", "1.5h", "45min" or a bare number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text).lower())
        if not match:
            raise InputError(f"--time-budget {text!r} is not a duration: write it as 90s, 10m or 1.5h")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not seconds > 0:
        raise InputError(f"--time-budget {text!r} must be more than 0 seconds")
    return seconds


def budget_factor(fraction: float, warmup_ratio: float) -> float:
    """The LR multiplier at `fraction` of the budget: linear warm-up over `warmup_ratio`, then
    linear decay to 0 at the end."""
    f = min(max(fraction, 0.0), 1.0)
    if f < warmup_ratio:
        return f / warmup_ratio
    return (1.0 - f) / max(1.0 - warmup_ratio, 1e-9)


class TimeBudget:
    """The clock of a run with a time budget (see the module docstring).

    `spent` is what earlier runs of this training (before a resume) had spent; `step` the
    step this process starts at.  `agree(step, seconds)` records the clock all processes agreed
    on after `step` steps; the other methods extrapolate from the last agreement.
    """

    def __init__(self, seconds: float, spent: float = 0.0, step: int = 0):
        self.seconds = seconds
        self.start_spent, self.start_step, self.t0 = spent, step, time.perf_counter()
        self.agreed_spent, self.agreed_step, self.pace = spent, step, 0.0

    def read(self) -> float:
        """This process's clock: seconds of the budget spent so far."""
        return self.start_spent + time.perf_counter() - self.t0

    def agree(self, step: int, seconds: float) -> None:
        """After `step` steps the clock says `seconds` (the same value on every process)."""
        self.agreed_spent, self.agreed_step = seconds, step
        if step > self.start_step:
            self.pace = (seconds - self.start_spent) / (step - self.start_step)

    def spent(self, step: int) -> float:
        """Seconds spent after `step` steps, by the agreed clock and pace."""
        return self.agreed_spent + (step - self.agreed_step) * self.pace

    def fraction(self, step: int) -> float:
        return min(1.0, self.spent(step) / self.seconds)

    def total_steps(self, step: int, cap: int | None) -> int:
        """The step at which the budget runs out at the agreed pace (`step` when it has; at most `cap`)."""
        left = self.seconds - self.spent(step)
        if left <= 0:
            total = step
        elif self.pace <= 0:                       # nothing measured yet: at least one more step
            total = step + 1
        else:
            total = step + max(1, math.ceil(left / self.pace))
        return min(total, cap) if cap else total
