"""numpy arrays to Arrow arrays and back without ``pa.array``, ``to_numpy`` or Python scalars.

pyarrow imports pandas, when it is installed, the first time one of those runs (to check whether
the input is a pandas object): 0.15 s of every ingest process, in the many data-engineering
environments that have pandas. The bulk BAM path goes through these helpers instead.
"""

import numpy as np
import pyarrow as pa


def numpy_array(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """An Arrow array over numpy ``values``, null where ``valid`` is False."""
    if values.dtype == np.bool_:
        data = pa.py_buffer(np.packbits(values, bitorder="little"))
    else:
        data = pa.py_buffer(np.ascontiguousarray(values))
    validity = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [validity, data])


def string_array(values: list[str]) -> pa.Array:
    """A string array of ``values`` (a short Python list, such as reference names)."""
    encoded = [value.encode() for value in values]
    offsets = np.zeros(len(encoded) + 1, np.int32)
    np.cumsum([len(value) for value in encoded], out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    )


def int64_values(column: pa.Array) -> np.ndarray:
    """The values of an int64 Arrow array without nulls, as a numpy view."""
    return np.frombuffer(column.buffers()[1], np.int64, len(column), column.offset * 8)
