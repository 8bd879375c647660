"""Decoding one batch ahead of the consumer, in a thread, without ever waiting unbounded on it."""

import logging
import threading
from collections.abc import Iterator
from queue import Empty, Full, Queue

import pyarrow as pa

logger = logging.getLogger(__name__)

# How long a consumer that stops gives the reader thread to finish before leaving it behind.
PRODUCER_STOP_SECONDS = 5.0
# How often a waiting consumer wakes up: a signal handler (Dagster's SIGTERM one) runs then, and a
# reader thread that died without a word is noticed.
_POLL_SECONDS = 0.1


def prefetch_batches(batches: Iterator[pa.RecordBatch], depth: int = 1) -> Iterator[pa.RecordBatch]:
    """Runs ``batches`` in a background thread, ``depth`` batches ahead of the consumer.

    With two CPUs this overlaps decoding (htslib and Arrow release the GIL for much of it) with
    DuckDB's insert of the previous batch, which runs without the GIL. Errors are re-raised in the
    consumer unchanged; when the consumer stops early the producer stops and closes the file.

    The consumer never waits unbounded. It polls the queue, so a signal handler runs between two
    polls (Dagster's SIGTERM handler raises here, and the run stops) and a producer that ended
    without a result is noticed. When it stops, it gives the producer ``PRODUCER_STOP_SECONDS``;
    a producer stuck inside C code (htslib) cannot be stopped from Python, so it is left behind
    as a daemon thread, with a warning, and the process can still exit.
    """
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=_POLL_SECONDS)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not put(("batch", batch)):
                    return
            put(("end", None))
        except BaseException as error:
            put(("error", error))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="bam-assets-reader", daemon=True)
    producer.start()
    try:
        while True:
            try:
                kind, value = queue.get(timeout=_POLL_SECONDS)
            except Empty:
                if not producer.is_alive() and queue.empty():
                    raise RuntimeError("the reader thread ended without a result") from None
                continue
            if kind == "batch":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        producer.join(PRODUCER_STOP_SECONDS)
        if producer.is_alive():
            logger.warning(
                "The reader thread did not stop within %.0f s (stuck in htslib?); leaving it",
                PRODUCER_STOP_SECONDS,
            )
