"""Operator tools for the model lifecycle: promote/rollback versions, replay traffic, drift reports."""
