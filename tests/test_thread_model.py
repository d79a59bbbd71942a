"""Hypothesis: random sequences of worker-thread calls against a plain model.

Each step runs one call; the job either returns, raises, or blocks until the
test releases it. The caller is either left alone, cancelled before the call,
or cancelled while the job runs. The model says what the caller sees and
whether the job ran:

- cancelled before the call: the caller gets the cancellation, the job never runs;
- cancelled while running, abandon_on_cancel=True: the caller gets the
  cancellation at once, the job still runs to completion;
- cancelled while running, shielded: the caller gets the job's own outcome;
- otherwise: the job's outcome.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import anyio
from anyio import CancelScope, create_task_group, get_cancelled_exc_class, to_thread
from anyio.lowlevel import checkpoint

Step = tuple[str, bool, str]  # (job kind, abandon_on_cancel, cancel mode)

steps = st.lists(
    st.tuples(
        st.sampled_from(["value", "error"]),
        st.booleans(),
        st.sampled_from(["none", "before", "during"]),
    ),
    min_size=1,
    max_size=12,
)


def model(step: Step, i: int) -> tuple[str, Any, bool]:
    """(what the caller sees, value, whether the job ran)."""
    kind, abandon, cancel = step
    if cancel == "before":
        return "cancelled", None, False
    if cancel == "during" and abandon:
        return "cancelled", None, True
    return ("value", i * 3, True) if kind == "value" else ("error", i, True)


async def run_steps(plan: list[Step]) -> list[tuple[str, Any, bool]]:
    ran: list[int] = []
    seen: list[tuple[str, Any, bool]] = []
    for i, (kind, abandon, cancel) in enumerate(plan):
        started = threading.Event()
        release = threading.Event()
        finished = threading.Event()

        def job(
            i: int = i,
            kind: str = kind,
            started: Any = started,
            release: Any = release,
            finished: Any = finished,
        ) -> int:
            started.set()
            release.wait(5)
            ran.append(i)
            finished.set()
            if kind == "error":
                raise ValueError(i)
            return i * 3

        outcome: tuple[str, Any] = ("none", None)
        with CancelScope() as scope:
            if cancel == "before":
                scope.cancel()
            else:
                release_now = cancel == "none"
                if release_now:
                    release.set()
            async with create_task_group() as tg:

                async def canceller(
                    scope: CancelScope = scope,
                    started: Any = started,
                    release: Any = release,
                    abandon: bool = abandon,
                ) -> None:
                    await to_thread.run_sync(started.wait, 5)
                    scope.cancel()
                    if not abandon:
                        # The shielded caller waits for the job: let it end.
                        release.set()

                if cancel == "during":
                    tg.start_soon(canceller)
                try:
                    value = await to_thread.run_sync(job, abandon_on_cancel=abandon)
                except ValueError as exc:
                    outcome = ("error", exc.args[0])
                except get_cancelled_exc_class():
                    outcome = ("cancelled", None)
                    raise
                else:
                    outcome = ("value", value)
                await checkpoint()

        release.set()
        if outcome[0] != "cancelled" or cancel != "before":
            # Let an abandoned job finish before judging whether it ran.
            await to_thread.run_sync(finished.wait, 5)
        seen.append((outcome[0], outcome[1], i in ran))
    return seen


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=steps)
def test_calls_match_model(backend: str, plan: list[Step]) -> None:
    seen = anyio.run(run_steps, plan, backend=backend)
    assert seen == [model(step, i) for i, step in enumerate(plan)]
