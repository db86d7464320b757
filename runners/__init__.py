"""Runner services: one ``@bentoml.service`` per hardware profile. Only runners load models.

Each profile hosts whatever models serving.yaml assigns to it, of any task (runners/host.py); the
entry service depends only on the profiles that have something to serve.
"""

from runners.profiles import PROFILES, CPURunner, GPURunner

__all__ = ["PROFILES", "CPURunner", "GPURunner"]
