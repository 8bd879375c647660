"""``export`` and ``count`` give what ``samtools view`` gives on an indexed copy of the same file:
regions (1-based, closed; samtools' overlap rule), flag, MAPQ, BED and read-group filters, counts,
and SAM/BAM/CRAM out. Several regions are compared with ``samtools view -M``, which returns each
record once in file order, as ``view`` does."""

import gzip
import random
import shutil
from pathlib import Path

import pysam
import pytest

from bam_assets.model.selection import ReadFilters
from bam_assets.orchestration.export import count, export
from bam_assets.orchestration.resources import StoreResource
from bam_assets.orchestration.settings import StoreSettings
from bam_assets.reading.bed import read_bed
from bam_assets_tests.helpers import (
    MANY_CONTIG_ALIAS,
    REAL_DATA,
    REAL_FILES,
    ingest_files,
    samtools_input,
    samtools_view,
    settings_for,
    write_many_contigs,
)

MANY = "many_contigs.bam"
UNSORTED = "many_contigs.sam"


def store_of(database: Path) -> StoreResource:
    return StoreResource(settings=StoreSettings(database=str(database)))


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every real file as samtools can query it by region: BAM and CRAM copied and indexed, SAM
    sorted into an indexed BAM (the same records in the same order)."""
    folder = tmp_path_factory.mktemp("indexed")
    copies = {}
    for name in REAL_FILES:
        if name.endswith(".sam"):
            copy = folder / f"{name}.bam"
            pysam.sort("-o", str(copy), str(REAL_DATA / name))
        else:
            copy = folder / name
            shutil.copyfile(REAL_DATA / name, copy)
        pysam.index(str(copy))
        copies[name] = copy
    return copies


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> tuple[StoreResource, Path, Path]:
    """(store, sorted indexed BAM, FASTA) of the generated 35-contig file, ingested twice: the
    sorted BAM (key many_contigs.bam) and the unsorted SAM it was sorted from (many_contigs.sam)."""
    folder = tmp_path_factory.mktemp("many")
    bam, fasta = write_many_contigs(folder)
    ingest_files(settings_for(folder, folder / "reads.sqlite"), [MANY, UNSORTED])
    return store_of(folder / "reads.sqlite"), bam, fasta


def exported(store: StoreResource, key: str, regions=(), tmp_path: Path | None = None, **options):
    """What ``export`` writes as SAM text (to a file, read back)."""
    out = tmp_path / "out.sam"
    export(store, key, regions, out, **options)
    return out.read_text()


def union_in_file_order(path: Path, regions: list[str]) -> str:
    """The records ``samtools view PATH REGION`` gives for any of ``regions``, each once, in the
    order of the (sorted) file: ``view``'s answer for several regions, built from samtools' answer
    for each. (``samtools view -M`` gives the same, but parses regions with htslib's older
    ``hts_parse_reg``, which splits a name such as ``HLA-A*01:01:01:01`` at its last colon and
    knows no ``{name}`` quoting.)"""
    wanted = set()
    for region in regions:
        wanted.update(samtools_view(path, regions=[region]).splitlines())
    return "".join(f"{line}\n" for line in samtools_view(path).splitlines() if line in wanted)


def regions_for(indexed_copy: Path) -> list[str]:
    """Regions of every form around the reads of the first three contigs that have any."""
    stats = [line.split("\t") for line in pysam.idxstats(str(indexed_copy)).splitlines()]
    regions = ["*", "."]
    names = [name for name, _, mapped, unmapped in stats if name != "*" and int(mapped) > 0]
    for name in names[:3]:
        lines = samtools_view(indexed_copy, regions=[name]).splitlines()
        middle = int(lines[len(lines) // 2].split("\t")[3])
        quoted = f"{{{name}}}" if ":" in name else name
        regions += [
            name,
            f"{quoted}:{middle}",
            f"{quoted}:{middle}-",
            f"{quoted}:-{middle}",
            f"{quoted}:{max(1, middle - 30)}-{middle + 30}",
            f"{quoted}:{middle:,}-{middle + 1000:,}",
            f"{quoted}:{middle}-{middle}",
        ]
    return regions


@pytest.mark.parametrize("name", REAL_FILES)
def test_each_region_gives_what_samtools_gives(real_database, indexed, name, tmp_path):
    store = store_of(real_database)
    for region in regions_for(indexed[name]):
        expected = samtools_view(indexed[name], regions=[region])
        assert exported(store, name, [region], tmp_path) == expected, region
        assert count(store, name, [region]) == expected.count("\n"), region


@pytest.mark.parametrize("name", REAL_FILES)
def test_several_regions_give_each_record_once_in_file_order(
    real_database, indexed, name, tmp_path
):
    # samtools -M reads regions with the older hts_parse_reg, which takes chr:-100 and chr:100-
    # otherwise; the other forms read the same in both.
    regions = [r for r in regions_for(indexed[name]) if ":-" not in r and not r.endswith("-")]
    if regions == ["*", "."]:
        pytest.skip("no placed records (and samtools -M fails on '*' alone)")
    regions = [r for r in regions if r != "."] + regions[2:4]  # overlapping ones, twice
    expected = samtools_view(indexed[name], "-M", regions=regions)
    assert exported(store_of(real_database), name, regions, tmp_path) == expected


# Region forms hts_parse_region knows, on the generated file's contigs with awkward names.
MANY_REGIONS = [
    "chr5",
    "chr5:3000",
    "chr5:3000-",
    "chr5:-3100",
    "chr5:3000-3100",
    "chr5:3,000-3,100",
    "chr5:3k-4.5k",
    "chr7:1e3-2e3",
    "chr5:0-100",
    "chr5:3000-3000",
    f"{MANY_CONTIG_ALIAS[1]}:100-5000",
    "{chrA:1-100}",
    "{chrA}:1-5000",
    "HLA-A*01:01:01:01",
    "HLA-A*01:01:01:01:1000-5000",
    "chrEmpty",
    "*",
    ".",
]


@pytest.mark.parametrize("region", MANY_REGIONS)
def test_regions_of_many_contigs_give_what_samtools_gives(many, region, tmp_path):
    store, bam, _ = many
    assert exported(store, MANY, [region], tmp_path) == samtools_view(bam, regions=[region])


def test_overlapping_regions_on_every_contig_give_each_record_once(many, tmp_path):
    store, bam, _ = many
    rng = random.Random(5)
    contigs = [line.split("\t")[0] for line in pysam.idxstats(str(bam)).splitlines()]
    regions = ["*"]
    for name in contigs[:-1]:
        quoted = f"{{{name}}}" if ":" in name else name
        start = rng.randint(1, 20_000)
        regions += [f"{quoted}:{start}-{start + 3000}", f"{quoted}:{start + 2000}-{start + 2500}"]
    assert exported(store, MANY, regions, tmp_path) == union_in_file_order(bam, regions)
    plain = [region for region in regions if "{" not in region and "HLA" not in region]
    assert exported(store, MANY, plain, tmp_path) == samtools_view(bam, "-M", regions=plain)


def test_an_unsorted_file_gives_samtools_records_in_its_own_order(many, tmp_path):
    store, bam, _ = many
    regions = ["chr5:3000-9000", "chr9", "chr5:8000-12000", "*"]
    wanted = set(samtools_view(bam, "-M", regions=regions).splitlines())
    sam_lines = samtools_view(bam.with_suffix(".sam")).splitlines()
    expected = "".join(f"{line}\n" for line in sam_lines if line in wanted)
    assert exported(store, UNSORTED, regions, tmp_path) == expected


# samtools view options beside the ReadFilters that mean the same.
FILTERS = [
    (["-f", "1"], ReadFilters(require_flags=1)),
    (["-f", "PAIRED,READ2"], ReadFilters(require_flags=0x81)),
    (["-F", "0x904"], ReadFilters(exclude_flags=0x904)),
    (["-F", "UNMAP,DUP"], ReadFilters(exclude_flags=0x404)),
    (["-G", "PAIRED,READ1"], ReadFilters(exclude_all_flags=0x41)),
    (["-G", "REVERSE"], ReadFilters(exclude_all_flags=0x10)),
    (["-q", "30"], ReadFilters(min_mapq=30)),
    (["-q", "255"], ReadFilters(min_mapq=255)),
    (["-r", "rg1"], ReadFilters(read_groups=frozenset({"rg1"}))),
    (["-e", "tlen > 100"], ReadFilters(where="tlen > 100")),
    (["-e", "[NM] >= 2"], ReadFilters(where="sam_tag_int(tags, 'NM') >= 2")),
    (["-e", "mapq >= 30 && !flag.reverse"], ReadFilters(where="mapq >= 30 AND NOT is_reverse")),
    (
        ["-f", "1", "-F", "DUP", "-G", "READ2,REVERSE", "-q", "20"],
        ReadFilters(require_flags=1, exclude_flags=0x400, exclude_all_flags=0x90, min_mapq=20),
    ),
]


@pytest.mark.parametrize(("arguments", "filters"), FILTERS, ids=[" ".join(a) for a, _ in FILTERS])
@pytest.mark.parametrize("name", REAL_FILES)
def test_filters_and_counts_on_real_files(real_database, name, arguments, filters, tmp_path):
    store = store_of(real_database)
    expected = samtools_view(REAL_DATA / name, *arguments)
    assert exported(store, name, filters=filters, tmp_path=tmp_path) == expected
    assert count(store, name, filters=filters) == expected.count("\n")


@pytest.mark.parametrize(("arguments", "filters"), FILTERS, ids=[" ".join(a) for a, _ in FILTERS])
def test_filters_within_regions_of_many_contigs(many, arguments, filters, tmp_path):
    store, bam, _ = many
    regions = ["chr3", "chr5:3000-9000", "*"]
    expected = samtools_view(bam, "-M", *arguments, regions=regions)
    assert exported(store, MANY, regions, tmp_path, filters=filters) == expected
    assert count(store, MANY, regions, filters) == expected.count("\n")


def test_read_group_file_and_records_without_a_read_group(many, tmp_path):
    store, bam, _ = many
    groups = tmp_path / "groups.txt"
    groups.write_text("rg2\n  rg3 nosuch\n")
    expected = samtools_view(bam, "-R", str(groups))
    filters = ReadFilters(read_groups=frozenset({"rg2", "rg3", "nosuch"}))
    assert exported(store, MANY, (), tmp_path, filters=filters) == expected
    lines = expected.splitlines()
    assert any("\tRG:Z:" not in line for line in lines)  # no RG tag: kept, as samtools keeps it
    assert not any("\tRG:Z:rg1" in line for line in lines)


@pytest.fixture
def bed(many, tmp_path: Path) -> Path:
    """Overlapping, nested, adjacent and empty intervals, a one-position line, a contig the file
    lacks, an alternative name (which BED does not resolve), and the lines samtools skips."""
    path = tmp_path / "targets.bed"
    path.write_text(
        "track name=targets\n# comment\nbrowser position chr5\n"
        "chr5\t2999\t3100\nchr5\t3050\t9000\nchr5\t4000\t4100\nchr5\t9000\t9500\n"
        "chr7\t1500\t1500\nchr9\t1200\nchrNope\t1\t1000000\n"
        f"{MANY_CONTIG_ALIAS[1]}\t0\t100000\nHLA-A*01:01:01:01\t100\t2000\n"
    )
    return path


def test_bed_targets_give_what_samtools_gives(many, bed, tmp_path):
    store, bam, _ = many
    targets = ReadFilters(targets=read_bed(bed))
    assert exported(store, MANY, (), tmp_path, filters=targets) == samtools_view(
        bam, "-L", str(bed)
    )
    # with regions: records that overlap a region and a BED interval (samtools without -M)
    regions = ["chr5:3050-5000"]
    expected = samtools_view(bam, "-L", str(bed), regions=regions)
    assert exported(store, MANY, regions, tmp_path, filters=targets) == expected


def test_thousands_of_bed_intervals_and_a_gzipped_bed(many, tmp_path):
    store, bam, _ = many
    rng = random.Random(3)
    contigs = [line.split("\t")[0] for line in pysam.idxstats(str(bam)).splitlines()][:-1]
    lines = []
    for _ in range(3000):
        start = rng.randint(0, 40_000)
        lines.append(f"{rng.choice(contigs)}\t{start}\t{start + rng.randint(0, 300)}\n")
    path = tmp_path / "many.bed.gz"
    path.write_bytes(gzip.compress("".join(lines).encode()))
    expected = samtools_view(bam, "-L", str(path))
    filters = ReadFilters(targets=read_bed(path))
    assert exported(store, MANY, (), tmp_path, filters=filters) == expected
    assert count(store, MANY, filters=filters) == expected.count("\n")


def test_an_empty_bed_keeps_nothing(many, tmp_path):
    store, bam, _ = many
    (tmp_path / "empty.bed").write_text("")
    assert samtools_view(bam, "-L", str(tmp_path / "empty.bed")) == ""
    assert count(store, MANY, filters=ReadFilters(targets=())) == 0


@pytest.mark.parametrize("name", REAL_FILES)
def test_whole_file_bam_round_trips(real_database, name, tmp_path):
    out = tmp_path / "out.bam"
    written = export(store_of(real_database), name, output=out)
    assert samtools_view(out) == samtools_view(REAL_DATA / name)
    assert written == int(pysam.view("-c", *samtools_input(REAL_DATA / name)))
    assert samtools_view(out, "-H") == samtools_view(REAL_DATA / name, "-H")


def test_region_to_bam_and_cram_with_header(many, tmp_path):
    store, bam, fasta = many
    regions = ["chr5:3000-9000", "HLA-A*01:01:01:01", "*"]
    expected = union_in_file_order(bam, regions)
    export(store, MANY, regions, tmp_path / "out.bam")
    assert samtools_view(tmp_path / "out.bam") == expected
    # CRAM keeps the mate fields of paired records only; samtools -C drops the others' too.
    export(store, MANY, regions, tmp_path / "out.cram", reference=str(fasta))
    samtools_cram = tmp_path / "samtools.cram"
    pysam.view(
        *("-C", "--no-PG", "-T", str(fasta), "-o", str(samtools_cram), str(bam), *regions),
        catch_stdout=False,
    )
    for option in ("-h", "-H"):  # records, and the header with the M5 sums CRAM adds
        ours, theirs = (
            pysam.view(option, "--no-PG", "-T", str(fasta), str(cram))
            for cram in (tmp_path / "out.cram", samtools_cram)
        )
        assert ours == theirs
    export(store, MANY, regions, tmp_path / "out.data", file_format="BAM")
    assert samtools_view(tmp_path / "out.data") == expected


def test_sam_with_header_and_header_only(many, tmp_path):
    store, bam, _ = many
    header = samtools_view(bam, "-H")
    with_header = exported(store, MANY, ["chr9"], tmp_path, with_header=True)
    assert with_header == samtools_view(bam, "-h", regions=["chr9"])
    assert exported(store, MANY, ["chr9"], tmp_path, header_only=True) == header
    export(store, MANY, ["chr9"], tmp_path / "header.bam", header_only=True)
    assert samtools_view(tmp_path / "header.bam", "-h") == header
