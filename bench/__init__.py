"""Benchmarks: this package against upstream anyio and raw asyncio / Trio.

Run ``python -m bench --help`` from the repository root. This package must
stay import-light: worker processes import it under the upstream venv's
interpreter too.
"""
