r"""Load test of the public API: a locust user (``locustfile.py``) and a headless runner (``run.py``).

    python -m loadtest.run --host http://127.0.0.1:3000 --users 32 --spawn-rate 8 --duration 60s \
        --out results/loadtest
"""
