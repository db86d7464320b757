"""The seam every model kind goes through: a task.

A task (sentiment, embedding, ...) declares in one class, in its own folder under ``tasks/``:

- ``endpoints``: its public routes, each with a typed request and response model and an async handler
  that turns a request into model inputs (pre-processing), asks the gateway for outputs, and builds
  the response (post-processing);
- ``load_model``: how a stored model of each kind becomes a :class:`Predictor` (``predict`` takes a
  batch of inputs and returns one output per input; runners call it, nothing else loads a model), on
  which device and, for tasks that list ``runtimes``, which runtime (serving.yaml ``models.<m>.runtime``);
- ``store_models``: the module that creates each Bento store name (a trainer or an importer), which
  ``make serve`` runs when serving.yaml asks for a model the store lacks (``slow_store_models``: the ones
  that take minutes, made in the background while the service already answers with the others);
- how its answers are described in prediction records and compared with a shadow's.

Everything generic — runners, versions, routing (A/B, canary, shadows, fallback), coalescing, deadlines,
metrics, prediction records, ``/models`` — works from this declaration alone.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel

from bundle.settings import Monitoring
from bundle.text import text_fields

if TYPE_CHECKING:
    from bundle.gateway import TaskGateway


class Predictor(Protocol):
    """A loaded model: a batch of inputs in, one JSON-serialisable output per input, in order.

    A predictor whose ``predict`` may run on several threads at once says so with a class attribute
    ``thread_safe = True``; a runner with ``pass_threads`` > 1 then runs its forward passes side by side.
    """

    def predict(self, inputs: Sequence[Any]) -> list[Any]: ...


Handler = Callable[["TaskGateway", Any], Awaitable[BaseModel]]


@dataclass(frozen=True)
class Endpoint:
    """One public route of a task: ``handler(gateway, request)`` answers a validated ``request``."""

    route: str
    request: type[BaseModel]
    response: type[BaseModel]
    handler: Handler  # its docstring is the operation's description in Swagger UI
    name: str = ""  # Python name of the API method (and of the SDK call); default: from the route

    def method_name(self) -> str:
        return self.name or self.route.strip("/").replace("/", "_").replace("-", "_")


class Task(abc.ABC):
    name: ClassVar[str]
    # store name -> ``python -m`` module (and its arguments) that creates it (trainer or importer)
    store_models: ClassVar[dict[str, str]]
    # those that take minutes to make: ``make serve`` starts serving without them and they join when made
    slow_store_models: ClassVar[frozenset[str]] = frozenset()
    # whether a model's input is a text: the Open Inference Protocol's BYTES input (bundle/oip.py) serves
    # only those; audio tasks take uploaded files through their own endpoints (bundle/audio.py)
    text_inputs: ClassVar[bool] = True
    # the runtimes its models may be asked to run on besides "auto" (serving.yaml models.<name>.runtime);
    # a task without any ignores the setting, and the runner refuses to start if one is asked for
    runtimes: ClassVar[tuple[str, ...]] = ()

    @property
    @abc.abstractmethod
    def endpoints(self) -> list[Endpoint]: ...

    @abc.abstractmethod
    def load_model(self, kind: str, path: str, device: str, runtime: str = "auto") -> Predictor:
        """Load a stored model of this task. ``kind`` is the model's ``pipeline`` label; ``runtime`` is
        "auto" or one of ``runtimes``."""

    def input_cost(self, item: Any) -> int:
        """A cheap size of one input, for length-sorted forward passes; default: its length."""
        return len(item) if hasattr(item, "__len__") else 0

    def describe_inputs(self, inputs: Sequence[Any], monitoring: Monitoring) -> dict[str, Any]:
        """What a request's prediction record keeps of its inputs (lists, one entry per input), as
        serving.yaml's ``monitoring`` allows; default: lengths and a digest or the texts themselves."""
        return text_fields([str(x) for x in inputs], monitoring)

    def describe_outputs(self, outputs: Sequence[Any]) -> dict[str, Any]:
        """What a prediction record keeps of the outputs (one entry per input)."""
        return {}

    def output_labels(self, outputs: Sequence[Any]) -> list[str]:
        """A label per output for the predictions counter; tasks without classes count ``"-"``."""
        return ["-"] * len(outputs)

    def agree(self, ours: Any, theirs: Any) -> bool:
        """Whether a shadow's output agrees with the primary's, for the shadow agreement rate."""
        return bool(ours == theirs)

    # The Open Inference Protocol's view of the task (bundle/oip.py): one BYTES input of texts, and
    # these output tensors (name, datatype, shape with -1 for the batch).
    tensor_outputs: ClassVar[list[tuple[str, str, list[int]]]] = [("output", "BYTES", [-1])]

    def to_tensors(self, outputs: Sequence[Any]) -> dict[str, list[Any]]:
        """Each output tensor's rows, one per input (a row is a value or a list of values)."""
        return {self.tensor_outputs[0][0]: list(outputs)}

    def combine(self, outputs: Sequence[Any], weights: Sequence[float]) -> Any:
        """The ensemble of one input's member outputs; only tasks whose outputs can be averaged."""
        raise NotImplementedError(f"task {self.name!r} has no ensemble")
