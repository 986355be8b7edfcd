"""bench/page.py judges a ratio by its median turn by turn: one disturbed turn must not
decide it, and turns are paired in the order they ran."""

import pytest

from bench.page import TICK_MS, busy_share, turn_ratios


def test_one_disturbed_turn_moves_the_whole_run_but_not_the_median() -> None:
    guarded = [90.0, 91.0, 30.0, 89.0, 90.0]  # the third turn: the machine was busy
    unguarded = [100.0, 100.0, 100.0, 100.0, 100.0]
    median, low, high = turn_ratios(guarded, unguarded)
    assert median == pytest.approx(0.90)
    assert (low, high) == (pytest.approx(0.30), pytest.approx(0.91))
    assert sum(guarded) / sum(unguarded) < 0.8  # what the whole run's ratio would say


def test_turns_are_paired_in_order_and_an_even_count_takes_the_middle_two() -> None:
    # a machine slowing down over the run: each pair is 0.9 or 0.8, whatever the speed
    median, low, high = turn_ratios([180.0, 80.0, 45.0, 36.0], [200.0, 100.0, 50.0, 45.0])
    assert (median, low, high) == (pytest.approx(0.85), pytest.approx(0.8), pytest.approx(0.9))


def test_turns_that_answered_nothing_are_left_out() -> None:
    assert turn_ratios([10.0, 5.0], [0.0, 10.0]) == (0.5, 0.5, 0.5)
    assert turn_ratios([], []) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="longer"):
        turn_ratios([1.0], [1.0, 2.0])  # unpaired turns are a bug in the bench


def test_busy_share_is_cpu_time_over_wall_time() -> None:
    # a server on the CPU 9.5 s of 10 s of turns waited 5% of them
    assert busy_share(round(9500 / TICK_MS), 10.0) == pytest.approx(0.95)
    assert busy_share(0, 10.0) == 0.0
    assert busy_share(100, 0.0) == 0.0  # no turn ran
