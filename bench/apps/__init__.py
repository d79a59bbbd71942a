"""Application benchmarks (`python -m bench --apps`): anyio as applications meet
it, under uvicorn + FastAPI, inside an httpx client and in a stream pipeline.

Each measured program runs in its own process, started by `bench.apps.run`
under our interpreter or the upstream venv's; see bench/README.md.
"""
