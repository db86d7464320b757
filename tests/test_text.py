from pipelines.text import normalize_text, stems, tokenize


def test_normalize_collapses_whitespace_and_drops_control_characters():
    assert normalize_text("  a\tgorgeous\n\n film\u200b ") == "a gorgeous film"
    assert normalize_text("\x00\x07 ") == ""


def test_normalize_composes_unicode():
    decomposed = "cafe\u0301"
    assert normalize_text(decomposed) == "caf\u00e9"


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("Witty, GORGEOUS film!") == ["witty", ",", "gorgeous", "film", "!"]


def test_stems_use_snowball():
    assert stems("Loved the performances") == ["love", "the", "perform"]
