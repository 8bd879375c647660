from bam_assets.reading.partition_keys import MAX_KEY_LENGTH, partition_key_for

SAFE_PATTERN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/+=@")


def test_plain_relative_paths_are_their_own_keys():
    assert partition_key_for("sample1.bam") == "sample1.bam"
    assert partition_key_for("run_7/lane-2/sample1.cram") == "run_7/lane-2/sample1.cram"


def test_odd_names_become_safe_unique_stable_keys():
    odd = [
        "my sample.bam",
        "my_sample.bam",
        "échantillon.bam",
        "echantillon.bam",
        'quote\'d "name".bam',
        "a...b.bam",
        "a..b.bam",
        "tab\there.bam",
        "new\nline.bam",
        "brackets[1],2.bam",
        "x';DROP TABLE reads;--.bam",
        "漢字.bam",
        "deep/" + "n" * 300 + ".bam",
        "deep/" + "n" * 301 + ".bam",
    ]
    keys = [partition_key_for(name) for name in odd]
    assert len(set(keys)) == len(odd)
    assert keys == [partition_key_for(name) for name in odd]
    for key in keys:
        assert set(key) <= SAFE_PATTERN
        assert "..." not in key
        assert 0 < len(key) <= MAX_KEY_LENGTH
    assert keys[0].startswith("my_sample.bam-")
    assert keys[1] == "my_sample.bam"
    assert keys[2].startswith("echantillon.bam-")
