"""The translation task's public contract."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from bundle.contract import Answered, ModelSelection, clean_text

# Decoding costs grow with the text (and attention with its square), and the models were trained on
# sentences: a request holds at most this many texts of at most this many characters.
MAX_TRANSLATE_CHARS = 1000
MAX_TRANSLATE_TEXTS = 32


def _clean(texts: list[str]) -> list[str]:
    out = []
    for i, text in enumerate(texts):
        if len(text) > MAX_TRANSLATE_CHARS:
            raise ValueError(
                f"item {i} has {len(text)} characters; the maximum for translation is {MAX_TRANSLATE_CHARS}"
            )
        try:
            out.append(clean_text(text))
        except ValueError as exc:
            raise ValueError(f"item {i} {exc}") from None
    return out


TranslateTexts = Annotated[
    list[str],
    Field(
        description=f"1 to {MAX_TRANSLATE_TEXTS} texts, each 1 to {MAX_TRANSLATE_CHARS} characters.",
        min_length=1,
        max_length=MAX_TRANSLATE_TEXTS,
    ),
    AfterValidator(_clean),
]
Language = Annotated[str, Field(min_length=2, max_length=8, description="ISO 639-1 code, e.g. en or pt.")]


class TranslateRequest(ModelSelection):
    texts: TranslateTexts = Field(examples=[["The children were playing happily in the garden."]])
    source: Language = Field(examples=["en"])
    target: Language = Field(examples=["pt"])


class TranslateResponse(Answered):
    translations: list[str] = Field(
        description="One translation per input text, in input order.",
        examples=[["As crianças estavam brincando alegremente no jardim."]],
    )
    source: str = Field(examples=["en"])
    target: str = Field(examples=["pt"])
