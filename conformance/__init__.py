"""Conformance run: upstream anyio 4.16.0's own tests and docs against this package.

``python -m conformance`` downloads the upstream sdist once, runs its tests/ on
every backend against the *installed* ``anyio`` and executes its documentation
examples, then writes results.json and results.md here. See ``--help``.
"""
