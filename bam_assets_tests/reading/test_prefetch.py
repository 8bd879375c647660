"""Reading ahead in a thread never makes the consumer wait unbounded.

A reader thread can get stuck where Python cannot stop it (inside htslib, say). Each case runs in a
fresh interpreter with a time limit: before this was bounded, both hung forever in
``producer.join()``.
"""

import pyarrow as pa
import pytest

from bam_assets.reading.prefetch import prefetch_batches
from bam_assets_tests.helpers import run_python

# A reader that yields one batch and then blocks for good, as a thread stuck in C code would.
STUCK_READER = """
    import signal, sys, threading, time
    import pyarrow as pa
    from bam_assets.reading import prefetch

    prefetch.PRODUCER_STOP_SECONDS = 0.5
    never = threading.Event()

    def stuck():
        yield pa.record_batch({"x": [1]})
        never.wait()
"""


def test_a_consumer_that_stops_leaves_a_stuck_reader_behind_within_seconds():
    result = run_python(
        STUCK_READER
        + """
    batches = prefetch.prefetch_batches(stuck())
    assert next(batches).num_rows == 1
    started = time.monotonic()
    batches.close()
    print(f"closed after {time.monotonic() - started:.1f} s")
    """,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "closed after 0." in result.stdout
    assert "did not stop within" in result.stderr  # the warning left in the log


def test_a_signal_stops_a_consumer_waiting_on_a_stuck_reader():
    """What Dagster does on SIGTERM: its handler raises in the main thread."""
    result = run_python(
        STUCK_READER
        + """
    class Terminated(Exception):
        pass

    def on_alarm(signum, frame):
        raise Terminated

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    started = time.monotonic()
    try:
        for _ in prefetch.prefetch_batches(stuck()):
            pass
    except Terminated:
        print(f"stopped after {time.monotonic() - started:.1f} s")
    """,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "stopped after" in result.stdout


def test_batches_and_errors_reach_the_consumer_in_order():
    def batches():
        yield pa.record_batch({"x": [1]})
        yield pa.record_batch({"x": [2]})
        raise ValueError("damaged")

    seen = []
    with pytest.raises(ValueError, match="damaged"):
        for batch in prefetch_batches(batches()):
            seen.append(batch.column("x")[0].as_py())
    assert seen == [1, 2]
