"""What a SAM header says about its reference sequences: the @SQ lines' names, lengths and
alternative names, read from the header text as ``samtools view -H`` prints it."""

import re

_SQ_LINE = re.compile(r"^@SQ\t(.*)$", re.MULTILINE)


def _sq_fields(text: str) -> list[dict[str, str]]:
    return [
        dict(field.split(":", 1) for field in match.group(1).split("\t") if ":" in field)
        for match in _SQ_LINE.finditer(text)
    ]


def header_contigs(text: str) -> list[tuple[str, int]]:
    """(name, length) of every @SQ line of a SAM header, in header order."""
    return [(fields["SN"], int(fields.get("LN", 0))) for fields in _sq_fields(text)]


def reference_names(text: str) -> dict[str, str]:
    """Every name a region may give a reference by, mapped to its ``SN``: the ``SN`` names and the
    comma-separated alternative names of ``AN`` tags, as htslib's ``sam_hdr_name2tid`` looks them
    up (an ``SN`` wins over an ``AN`` of the same spelling; the first ``AN`` wins over a later
    one)."""
    sq_lines = _sq_fields(text)
    names = {fields["SN"]: fields["SN"] for fields in sq_lines}
    for fields in sq_lines:
        for alternative in fields.get("AN", "").split(","):
            if alternative:
                names.setdefault(alternative, fields["SN"])
    return names
