"""Reading alignment files into Arrow: finding them, keys, opening, decoding, failure causes.

The only code that uses pysam. Imports neither storage, statistics nor Dagster.
"""
