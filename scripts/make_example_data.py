"""Regenerates the bundled example data in bam_assets/example_data (run once; output committed)."""

import pysam

from bam_assets.orchestration.project_paths import EXAMPLE_DATA_DIR
from bam_assets.reading.synthetic_bam import write_synthetic_bam, write_synthetic_sam


def main() -> None:
    EXAMPLE_DATA_DIR.mkdir(exist_ok=True)
    paired = write_synthetic_bam(EXAMPLE_DATA_DIR / "synthetic_paired.bam", 2_000, seed=1)
    pysam.sort("-n", "--no-PG", "-o", str(EXAMPLE_DATA_DIR / "synthetic_by_name.bam"), str(paired))
    unaligned = EXAMPLE_DATA_DIR / "unaligned.sam"
    sam = write_synthetic_sam(EXAMPLE_DATA_DIR / "tmp.sam", 40, seed=2)
    with sam.open() as source, unaligned.open("w") as target:
        target.write("@HD\tVN:1.6\tSO:unsorted\n@RG\tID:rg1\tSM:synthetic\n")
        target.writelines(line for line in source if line.startswith("unmapped"))
    sam.unlink()


if __name__ == "__main__":
    main()
