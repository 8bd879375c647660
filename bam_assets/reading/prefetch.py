"""Decoding one batch ahead of the consumer, in a thread."""

import threading
from collections.abc import Iterator
from queue import Full, Queue

import pyarrow as pa


def prefetch_batches(batches: Iterator[pa.RecordBatch], depth: int = 1) -> Iterator[pa.RecordBatch]:
    """Runs ``batches`` in a background thread, ``depth`` batches ahead of the consumer.

    With two CPUs this overlaps decoding (htslib and Arrow release the GIL for much of it) with
    DuckDB's insert of the previous batch, which runs without the GIL. Errors are re-raised in the
    consumer unchanged; when the consumer stops early the producer stops and closes the file.
    """
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
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
            kind, value = queue.get()
            if kind == "batch":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        producer.join()
