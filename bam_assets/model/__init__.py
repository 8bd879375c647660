"""What an alignment record is, shared by every layer: SAM flag bits and CIGAR operations, the
columns of a stored record, and the names of the tables that hold them. Imports nothing else of
bam_assets."""
