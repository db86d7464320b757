"""Training and import scripts: each creates one model in the Bento store, with everything a reader
needs to trust it in its metadata. Which script creates which store name is declared by each task
(``store_models`` in tasks/<task>/__init__.py); ``python -m train.ensure`` runs the ones serving.yaml
needs and the store lacks.
"""
