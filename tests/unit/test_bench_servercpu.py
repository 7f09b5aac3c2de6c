"""bench/servercpu.py's per-thread counters: read from /proc for every thread, and the difference of
two snapshots per thread (a thread that appeared in between counts whole)."""

from __future__ import annotations

import os
import threading

from bench.servercpu import COUNTERS, delta, threads


def test_every_thread_is_read_with_all_its_counters() -> None:
    started, finish = threading.Event(), threading.Event()

    def wait() -> None:
        started.set()
        finish.wait(10)

    before = threads(os.getpid())
    worker = threading.Thread(target=wait)
    worker.start()
    started.wait(10)
    try:
        after = threads(os.getpid())
    finally:
        finish.set()
        worker.join()
    assert worker.native_id in after and worker.native_id not in before
    assert threading.get_native_id() in after
    assert all(len(values) == len(COUNTERS) for _, values in after.values())
    assert after[worker.native_id][1][4] > 0, "the worker ran: its time on a CPU (schedstat) counts"


def test_delta_is_per_thread_and_a_new_thread_counts_whole() -> None:
    before = {1: ("a", [1.0, 2.0, 3, 4, 5.0, 6.0])}
    after = {1: ("a", [1.5, 2.0, 5, 4, 5.5, 7.0]), 2: ("b", [0.1, 0.2, 1, 2, 0.3, 0.4])}
    assert delta(before, after) == {1: ("a", [0.5, 0.0, 2, 0, 0.5, 1.0]), 2: ("b", [0.1, 0.2, 1, 2, 0.3, 0.4])}
