import unicodedata

from bundle.text import normalize_text
from tasks.sentiment.pipelines.features import stems, tokenize


def test_normalize_collapses_whitespace_and_drops_control_characters():
    assert normalize_text("  a\tgorgeous\n\n film\u200b ") == "a gorgeous film"
    assert normalize_text("\x00\x07 ") == ""


def test_normalize_composes_unicode():
    decomposed = "cafe\u0301"
    assert normalize_text(decomposed) == "caf\u00e9"


def test_ascii_fast_path_agrees_with_the_general_path():
    # The general path, character by character; a non-ASCII marker forces it, then is removed.
    every_ascii = "".join(chr(i) for i in range(128)) + " word\x1f\x0b\tend "
    fast = normalize_text(every_ascii)
    slow = normalize_text(every_ascii + "\u00e9").removesuffix("\u00e9").strip()
    assert fast == slow
    assert all(unicodedata.category(ch) != "Cc" for ch in fast)


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("Witty, GORGEOUS film!") == ["witty", ",", "gorgeous", "film", "!"]


def test_stems_use_snowball():
    assert stems("Loved the performances") == ["love", "the", "perform"]
