"""Read statistics as samtools computes them, in SQL over the stored reads, and samtools' text.

Each module reproduces one samtools output (``flagstat``, ``idxstats``, ``summary_numbers`` for the
SN lines of ``samtools stats``, ``distributions``) and names the samtools source it follows;
``cycle_quality`` sums quality per cycle while reads stream in. Queries run on a connection the
caller's store opened; what to store comes back as table specs and SELECTs. Imports no Dagster.
"""
