"""Runner services: one ``@bentoml.service`` per hardware profile. Only runners load models."""
