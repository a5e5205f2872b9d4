"""What a person running the pipeline sees while it runs: one line as each step starts and ends, with the
time so far, an estimate for the rest of the trainings, and the table of step times at the end.

Times are measured and reported, never used to decide anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def minutes(seconds: float) -> str:
    seconds = round(seconds, 1)  # as shown: 59.96 s is "1 min 00.0 s", not "60.0 s"
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s" if seconds >= 60 else f"{seconds:.1f} s"


class StepClock:
    """Wall-clock seconds of each step: a line as each starts and ends, and a table at the end."""

    def __init__(self, steps: int) -> None:
        self.steps = steps  # how many `time` calls this run makes, for "[3/7]"
        self.began = time.monotonic()
        self.seconds: dict[str, float] = {}
        self.trainings: dict[str, float] = {}  # the part of "trainings" each variant took

    def time(self, name: str, call: Callable[[], T]) -> T:
        number = len(self.seconds) + 1
        print(f"[{number}/{self.steps}] {name} ... ({minutes(time.monotonic() - self.began)} so far)")
        began = time.monotonic()
        try:
            return call()
        finally:
            self.seconds[name] = time.monotonic() - began
            print(f"[{number}/{self.steps}] {name}: {minutes(self.seconds[name])}")

    def table(self) -> str:
        total = sum(self.seconds.values())
        rows = []
        for name, seconds in self.seconds.items():
            rows.append(f"| {name} | {minutes(seconds)} |")
            if name == "trainings":
                rows += [f"| &nbsp;&nbsp;{part} | {minutes(took)} |" for part, took in self.trainings.items()]
        return "\n".join(["| step | time |", "| --- | --- |", *rows, f"| **total** | **{minutes(total)}** |"])


class TrainingPace:
    """How far the trainings are, and about how long the rest take at the pace so far: the mean time of
    the variants trained so far times the number still to train (the cpu and faithful profiles give each
    variant a step budget of about the same minutes, so the mean is a fair guess; a reused run costs
    nothing)."""

    def __init__(self, names: list[str], to_train: list[str]) -> None:
        self.total = len(names)
        self.to_train = set(to_train)
        self.finished = 0
        self.took: list[float] = []

    def line(self, name: str, result: dict[str, Any] | None) -> str:
        self.finished += 1
        self.to_train.discard(name)
        if result is None:
            what = "FAILED"
        else:
            steps = f"{result['step']:,}/{result['total_steps']:,} steps"
            what = f"{result['action']}, {steps}, {minutes(result['seconds'])}"
            if result["action"] != "reused":
                self.took.append(result["seconds"])
        line = f"trainings {self.finished}/{self.total}: {name} {what}"
        if self.to_train and self.took:
            left = sum(self.took) / len(self.took) * len(self.to_train)
            line += f"; about {minutes(left)} left for {len(self.to_train)} more at the pace so far"
        return line
