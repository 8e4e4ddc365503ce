"""The prediction server (``cnnkit serve``) and its page; a consumer of runs.

``settings`` holds its defaults, ``limits`` what counts as an acceptable image,
``uploads`` how images arrive, ``batcher`` the dynamic micro-batching, ``wire`` the
operations and how the two processes talk, ``model_process`` the HTTP process's handle on
the model process and ``worker`` that process's loop, ``model`` what it computes with the run
and ``index`` with a search index, ``metrics`` the Prometheus counters, ``middleware``
the token, byte limit and security headers, ``app`` the routes and ``search_routes``
an index's, ``server`` uvicorn and the signals, and ``static/`` the page. Needs the
``serve`` extra (FastAPI, uvicorn).

This package imports nothing itself, so that the CLI reads ``settings`` without torch
or FastAPI; ``cnnkit.serve.server.run_server`` and ``cnnkit.serve.app.create_app``
are the entry points.
"""
