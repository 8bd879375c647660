"""The error every reading failure becomes: the file, and the cause in words."""

from pathlib import Path


class AlignmentReadError(RuntimeError):
    """An alignment file that pysam/htslib cannot read, with the file named in the message."""

    def __init__(self, path: Path, cause: str):
        super().__init__(f"Cannot read alignment file {path}: {cause}")
        self.path = path
        self.cause = cause
