"""``bam-assets view`` as people use ``samtools view``: each option gives what samtools gives on
the same file, and bad input stops with a message, a non-zero exit and no output file."""

import subprocess
import sys
from pathlib import Path

import pytest

from bam_assets.cli.main import main
from bam_assets_tests.helpers import CRAM_REFERENCE, REAL_DATA, cli_bytes, samtools_view

# Both have a .bai beside them in the shared folder, so samtools can answer regions.
MPILEUP = "samtools_mpileup.1.bam"  # chromosome 17 only, 50 read groups
UNMAPPED = "umitools_unmapped.bam"  # 25 contigs, 10,000 records, 32 unplaced


def view(database: Path, *arguments: str) -> str:
    return cli_bytes("view", "--db", str(database), *arguments).decode()


# (bam-assets view options, samtools view options, regions, file)
OPTIONS = [
    (["-c"], ["-c"], [], UNMAPPED),
    (["-c"], ["-c", "-M"], ["chr1", "chr2:1-100000000", "*"], UNMAPPED),
    (["-h"], ["-h"], ["chr3:1,000,000-"], UNMAPPED),
    (["-H"], ["-H"], [], UNMAPPED),
    (["-f", "READ1", "-F", "0x10"], ["-f", "READ1", "-F", "0x10"], ["chr1"], UNMAPPED),
    (["-G", "PAIRED,REVERSE", "-q", "30"], ["-G", "PAIRED,REVERSE", "-q", "30"], ["*"], UNMAPPED),
    (["-f", "1", "-f", "2", "-c"], ["-f", "3", "-c"], [], UNMAPPED),
    (
        ["-r", "ERR162872", "-r", "ERR013140"],
        ["-r", "ERR162872", "-r", "ERR013140"],
        ["17:1-3k"],
        MPILEUP,
    ),
    (["--where", "tlen > 300 AND mapq < 60"], ["-e", "tlen > 300 && mapq < 60"], [], MPILEUP),
    (
        ["--where", "sam_tag(tags, 'RG') LIKE 'ERR24%'"],
        ["-e", '[RG] =~ "^ERR24"'],
        ["17:-2k"],
        MPILEUP,
    ),
]


@pytest.mark.parametrize(
    ("ours", "theirs", "regions", "name"), OPTIONS, ids=[" ".join(o[0] + o[2]) for o in OPTIONS]
)
def test_options_give_what_samtools_gives(real_database, ours, theirs, regions, name):
    expected = samtools_view(REAL_DATA / name, *theirs, regions=regions)
    assert view(real_database, name, *ours, *regions) == expected


def test_read_group_and_bed_files(real_database, tmp_path):
    groups, bed = tmp_path / "groups.txt", tmp_path / "targets.bed"
    groups.write_text("ERR162875\nERR245038 ERR243039\n")
    bed.write_text("17\t999\t1200\n17\t3000\t3001\n")
    arguments = ["-R", str(groups), "-L", str(bed)]
    expected = samtools_view(REAL_DATA / MPILEUP, *arguments)
    assert view(real_database, MPILEUP, *arguments) == expected
    assert view(real_database, MPILEUP, "-c", *arguments) == f"{expected.count(chr(10))}\n"
    dropped = ["-R", f"^{groups}", "17:2000-"]
    assert view(real_database, MPILEUP, *dropped) == samtools_view(
        REAL_DATA / MPILEUP, *dropped[:2], regions=dropped[2:]
    )


def test_bam_and_sam_files_and_a_count_file_out(real_database, tmp_path):
    regions = ["chr1:1-50000000", "chrM", "*"]
    expected = samtools_view(REAL_DATA / UNMAPPED, "-M", regions=regions)
    view(real_database, UNMAPPED, *regions, "-o", str(tmp_path / "out.bam"))
    assert samtools_view(tmp_path / "out.bam") == expected
    view(real_database, UNMAPPED, *regions, "-b", "-o", str(tmp_path / "out.data"))
    assert samtools_view(tmp_path / "out.data") == expected
    view(real_database, UNMAPPED, *regions, "-O", "sam", "-o", str(tmp_path / "out.bam.txt"))
    assert (tmp_path / "out.bam.txt").read_text() == expected
    view(real_database, UNMAPPED, "-c", "chrM", "-o", str(tmp_path / "count.txt"))
    assert (tmp_path / "count.txt").read_text() == "0\n"


def test_cram_out_with_a_reference(real_database, tmp_path):
    name, out = "modkit_bc_anchored_10_reads.unmapped.bam", tmp_path / "out.cram"
    view(real_database, name, "-C", "--reference", str(CRAM_REFERENCE), "-o", str(out))
    assert samtools_view(out) == samtools_view(REAL_DATA / name)


def test_bam_to_standard_output(real_database, tmp_path):
    command = [sys.executable, "-m", "bam_assets", "view", "--db", str(real_database), "-b"]
    with (tmp_path / "piped.bam").open("wb") as out:
        subprocess.run([*command, UNMAPPED, "chr2"], stdout=out, check=True)
    expected = samtools_view(REAL_DATA / UNMAPPED, regions=["chr2"])
    assert samtools_view(tmp_path / "piped.bam") == expected


BAD_INPUT = [
    ([UNMAPPED, "chrZ:1-100"], "region 'chrZ:1-100': unknown reference name 'chrZ'"),
    ([UNMAPPED, "chr1:200-100"], "region 'chr1:200-100': the range ends before it starts"),
    (
        ["modkit_bc_anchored_10_reads.unmapped.bam", "chr1"],
        "the file has no reference sequences (no @SQ lines), so only '*'",
    ),
    ([UNMAPPED, "-F", "DUPLICATE"], "unknown flag 'DUPLICATE'"),
    ([UNMAPPED, "-f", "PAIRED,,DUP"], "unknown flag '' in 'PAIRED,,DUP'"),
    ([UNMAPPED, "--where", "mapq > 1; DELETE FROM reads"], "is more than one SQL statement"),
    ([UNMAPPED, "--where", "DELETE FROM reads"], "is not one SQL expression"),
    ([UNMAPPED, "--where", "true FROM files"], "is not one SQL expression"),
    ([UNMAPPED, "--where", "qname IN (UPDATE reads SET mapq = 0)"], "is not one SQL expression"),
    ([UNMAPPED, "--where", "no_such_column > 1"], 'Referenced column "no_such_column"'),
    ([UNMAPPED, "-L", "/no/such.bed"], "cannot read BED file /no/such.bed"),
    ([UNMAPPED, "-R", "/no/such.txt"], "cannot read the read group file"),
    ([UNMAPPED, "-r", "a", "-R", "^/dev/null"], "-r and -R ^FILE cannot be mixed"),
    ([UNMAPPED, "-C"], "CRAM output needs the reference FASTA"),
    # The shared FASTA is a 4200-bp excerpt of chromosome 17: its MD5 is not the @SQ line's M5.
    ([MPILEUP, "-C", "-T", str(CRAM_REFERENCE)], "htslib could not write the CRAM output"),
    ([UNMAPPED, "-O", "vcf"], "unknown output format 'vcf'"),
]


@pytest.mark.parametrize(
    ("arguments", "message"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT]
)
def test_bad_input_stops_with_a_message_and_writes_nothing(
    real_database, tmp_path, arguments, message
):
    out = tmp_path / ("out.cram" if "-C" in arguments else "out.bam")
    with pytest.raises(SystemExit) as stopped:
        main(["view", "--db", str(real_database), *arguments, "-o", str(out)])
    assert str(stopped.value).startswith("bam-assets view: ")
    assert message in str(stopped.value)
    assert list(tmp_path.iterdir()) == []


def test_bad_input_exits_non_zero_through_the_console_script(real_database):
    command = [sys.executable, "-m", "bam_assets", "view", "--db", str(real_database)]
    result = subprocess.run([*command, UNMAPPED, "chr1:9-1"], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "bam-assets view: region 'chr1:9-1': the range ends before it starts\n"
