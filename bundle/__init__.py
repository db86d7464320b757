"""The gateway: everything between a client and the runners that is the same for every task.

settings (serving.yaml), task (the seam a task implements), contract (shared request/response
pieces), api (API methods generated from each task's endpoints), gateway (model choice, routing,
fallback, shadows, records), coalesce (one runner call for concurrent requests, bounded), overload
(refusals and deadlines), routing (A/B, canary, shadows), observability (metrics, prediction records),
errors and openapi_docs (what clients read), text (the shared text pre-processing), samples.
"""
