"""The tasks the bundle serves, one folder each. A task declares its endpoints, request and response
models, pre- and post-processing, model kinds and how its models enter the store (bundle/task.py).

To add a task: write its folder, then add it here. serving.yaml says which models serve it.
"""

from __future__ import annotations

from bundle.task import Task
from tasks.embedding import EmbeddingTask
from tasks.music import MusicTask
from tasks.sentiment import SentimentTask
from tasks.speech import SpeechTask
from tasks.translation import TranslationTask

TASKS: dict[str, Task] = {
    task.name: task for task in (SentimentTask(), EmbeddingTask(), TranslationTask(), SpeechTask(), MusicTask())
}
