"""The tasks the bundle serves, one folder each (the registry is tasks/registry.py). Importing one task's
contract or pipelines imports nothing of the others, nor BentoML."""
