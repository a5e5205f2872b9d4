"""The pipeline's progress lines: steps numbered with the time so far, the trainings with an estimate of
what is left (pure arithmetic on measured seconds; no flow is started)."""

from __future__ import annotations

import pytest

from flows.progress import StepClock, TrainingPace, minutes


def result(action: str, seconds: float, step: int = 100) -> dict:
    return {"action": action, "step": step, "total_steps": 100, "seconds": seconds}


def test_the_estimate_is_the_mean_pace_times_the_variants_still_to_train() -> None:
    pace = TrainingPace(["a", "b", "c", "d", "e"], to_train=["a", "b", "c", "e"])  # d's run is current
    assert pace.line("a", result("trained", 60.0)) == (
        "trainings 1/5: a trained, 100/100 steps, 1 min 00.0 s; about 3 min 00.0 s left for 3 more at the "
        "pace so far"
    )
    assert pace.line("b", result("resumed", 30.0, step=40)).endswith(
        "about 1 min 30.0 s left for 2 more at the pace so far"
    )
    assert pace.line("c", None) == "trainings 3/5: c FAILED; about 45.0 s left for 1 more at the pace so far"
    assert pace.line("d", result("reused", 0.1)).endswith("about 45.0 s left for 1 more at the pace so far")
    assert pace.line("e", result("trained", 50.0)) == "trainings 5/5: e trained, 100/100 steps, 50.0 s"


def test_no_estimate_before_anything_was_trained() -> None:
    pace = TrainingPace(["a", "b"], to_train=["b"])
    assert pace.line("a", result("reused", 0.2)) == "trainings 1/2: a reused, 100/100 steps, 0.2 s"


def test_each_step_is_announced_numbered_and_timed(capsys: pytest.CaptureFixture[str]) -> None:
    clock = StepClock(steps=2)
    assert clock.time("data", lambda: 7) == 7
    with pytest.raises(ZeroDivisionError):  # a failing step is timed and reported too
        clock.time("classifier", lambda: 1 / 0)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[0] for line in lines] == ["[1/2]", "[1/2]", "[2/2]", "[2/2]"]
    assert lines[0].startswith("[1/2] data ... (") and lines[2].startswith("[2/2] classifier ... (")
    assert set(clock.seconds) == {"data", "classifier"} and "| **total** |" in clock.table()


@pytest.mark.parametrize(
    ("seconds", "shown"), [(5.04, "5.0 s"), (59.96, "1 min 00.0 s"), (61.5, "1 min 01.5 s")]
)
def test_minutes(seconds: float, shown: str) -> None:
    assert minutes(seconds) == shown
