"""W4's replacement rate counts only the time with replacement work outstanding."""

from bench.scenarios.w4_node_loss import busy_time


def test_one_node_is_busy_from_its_down_mark_until_its_last_replacement():
    assert busy_time([(10.0, 3)], [10.5, 11.0, 12.0]) == 2.0


def test_the_wait_between_two_lost_nodes_is_not_counted():
    # node A down at 0 (2 allocs, replaced by 1), node B down at 5 (1 alloc, replaced at 5.5)
    assert busy_time([(0.0, 2), (5.0, 1)], [0.5, 1.0, 5.5]) == 1.5


def test_overlapping_nodes_count_once():
    # B goes down while A's replacements are still outstanding: one busy stretch 0..4
    assert busy_time([(0.0, 2), (1.0, 2)], [2.0, 3.0, 3.5, 4.0]) == 4.0


def test_work_never_finished_counts_until_the_last_ack():
    assert busy_time([(0.0, 2)], [1.0]) == 1.0


def test_a_stray_ack_before_any_work_does_not_shorten_later_work():
    assert busy_time([(5.0, 1)], [1.0, 6.0]) == 1.0
