"""The translation task's public contract."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from bundle.contract import Answered, ModelSelection, text_list

# Decoding costs grow with the text (and attention with its square), and the models were trained on
# sentences: a request holds at most this many texts of at most this many characters.
MAX_TRANSLATE_CHARS = 1000
MAX_TRANSLATE_TEXTS = 32


TranslateTexts = text_list(MAX_TRANSLATE_TEXTS, MAX_TRANSLATE_CHARS)
Language = Annotated[str, Field(min_length=2, max_length=8, description="ISO 639-1 code, e.g. en or pt.")]


class TranslateRequest(ModelSelection):
    texts: TranslateTexts = Field(examples=[["The children were playing happily in the garden."]])  # type: ignore[valid-type]  # a type built by text_list()
    source: Language = Field(examples=["en"])
    target: Language = Field(examples=["pt"])


class TranslateResponse(Answered):
    translations: list[str] = Field(
        description="One translation per input text, in input order.",
        examples=[["As crianças estavam brincando alegremente no jardim."]],
    )
    source: str = Field(examples=["en"])
    target: str = Field(examples=["pt"])
