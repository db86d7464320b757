__version__ = "0.5.0"
# The version of the service contract (model-bundle's bundle/contract.py and tasks/*/contract.py) whose
# answers models.py mirrors. Additive server changes (new fields, new endpoints) keep it; a removed or
# renamed field changes it.
CONTRACT_VERSION = "0.5.0"
