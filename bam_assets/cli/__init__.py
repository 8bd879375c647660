"""The ``bam-assets`` command line: a thin layer over the same functions the assets call."""
