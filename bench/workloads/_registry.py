"""The workload registry.

A workload is one measured operation written three times: against the public
anyio API (run unchanged by our package and by upstream anyio), against raw
asyncio and against raw Trio. Each body receives the operation count ``n`` and
returns the measured quantity for those ``n`` operations: elapsed seconds for a
timing workload, bytes for a memory one. Bodies time only their steady-state
section so setup (creating streams, spawning helper tasks) stays out of it.

The modules defining workloads import neither anyio nor trio at the top: the
worker process for the raw asyncio baseline must run without either, and the
one for upstream anyio must never see our package.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from tests._backends import BACKEND_IDS, TRIO

Body = Callable[[int], Awaitable[tuple[float, int]]]
Kind = Literal["time", "memory"]


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    group: Literal["micro", "shape"]
    kind: Kind
    # Operation counts: (quick, full).
    sizes: tuple[int, int]
    # Public names the anyio body needs, dotted from the package ("lowlevel.checkpoint").
    requires: tuple[str, ...]
    anyio: Body
    raw_asyncio: Body | None = None
    raw_asyncio_label: str = ""
    raw_trio: Body | None = None
    raw_trio_label: str = ""
    # Backends the anyio body supports (all by default).
    backends: tuple[str, ...] = BACKEND_IDS
    unit: str = field(default="")

    @property
    def unit_label(self) -> str:
        return self.unit or ("ns/op" if self.kind == "time" else "B/task")

    def raw_for(self, backend: str) -> tuple[Body | None, str]:
        if backend == TRIO:
            return self.raw_trio, self.raw_trio_label
        return self.raw_asyncio, self.raw_asyncio_label


REGISTRY: dict[str, Workload] = {}


def register(workload: Workload) -> Workload:
    if workload.name in REGISTRY:
        raise ValueError(f"duplicate workload name {workload.name!r}")
    REGISTRY[workload.name] = workload
    return workload
