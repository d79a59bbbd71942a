"""Where an app scenario's CPU goes, and how much of it anyio owns (py-spy).

    python -m bench.apps.profile [--only PATTERN] [--impls ours,upstream] \
        [--seconds 5] [--py-spy PATH] [--native]

For each selected scenario this starts the measured process as
``python -m bench --apps`` does, loads it, samples it with ``py-spy record``
(raw collapsed stacks; idle threads left out) and attributes every sample to
the package of its innermost frame that belongs to a known package (time spent
in the interpreter or in C code called from a package is billed to that
package). "anyio" is the measured implementation: its Python files and, with
``--native``, its C++ extension. py-spy is on PyPI (``pip install py-spy``);
it needs ptrace rights over the process (root, or kernel.yama.ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import _env
from bench.apps import run as apps

# Innermost match wins; order matters only for paths matching several.
PACKAGES = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        # py-spy names files relative to their sys.path entry ("anyio/x.py").
        ("anyio", r"(?:^|[/( ])anyio/|_cpp\.cpython|anyio::|\.[ch]pp:"),
        ("starlette", r"(?:^|[/( ])starlette/"),
        ("fastapi", r"(?:^|[/( ])fastapi/"),
        ("pydantic", r"(?:^|[/( ])pydantic(?:_core)?/|pydantic_core"),
        ("uvicorn", r"(?:^|[/( ])uvicorn/"),
        ("httptools", r"(?:^|[/( ])httptools/|httptools/parser"),
        ("httpx", r"(?:^|[/( ])httpx/"),
        ("httpcore", r"(?:^|[/( ])httpcore/"),
        ("h11", r"(?:^|[/( ])h11/"),
        ("uvloop", r"uvloop|\((?:loop|core|linux|stream|tcp)\.c:"),
        ("trio", r"(?:^|[/( ])trio/"),
        ("asyncio", r"(?:^|[/( ])asyncio/|_asyncio\.cpython"),
        ("threading", r"\(threading\.py|(?:^|[/( ])concurrent/"),
        ("bench", r"(?:^|[/( ])bench/"),
        ("stdlib", r"\((?:[a-z_]+/)*[a-z_]+\.py:"),
    )
)


# A thread parked in one of these is waiting, not working: native unwinding
# does not always tell py-spy so.
IDLE_LEAVES = re.compile(
    r"futex|pthread_cond_(?:timed)?wait|sem_(?:timed|clock)?wait|PyThread_acquire_lock"
    r"|acquire_timed|lock_PyThread_acquire_lock|Condition\.wait |SimpleQueue\.get"
)


# A leaf in one of these is the kernel at work (a socket send also runs the
# loopback receive path): billed as "syscall/<owner>", apart from the owner's
# own code.
SYSCALL_LEAVES = re.compile(
    r"^(?:send|recv|write|read|sendmsg|recvmsg|writev|readv|sendto|recvfrom|"
    r"epoll_ctl|accept4?|connect|close|shutdown|getsockopt|setsockopt|"
    r"pthread_cond_signal|pthread_cond_broadcast|__futex_wake|futex_wake|syscall)"
    r"(?: \(|$)"
)


def classify(frame: str) -> str | None:
    for name, pattern in PACKAGES:
        if pattern.search(frame):
            return name
    return None


def attribute(
    collapsed: str,
) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """Samples per package, and per anyio function, from py-spy's raw output."""
    packages: collections.Counter[str] = collections.Counter()
    anyio_functions: collections.Counter[str] = collections.Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        if not stack.strip():  # no frame at all: inside the loop's C code
            packages["(no frame)"] += int(count)
            continue
        frames = stack.split(";")
        if "watch_stdin" in stack or any(IDLE_LEAVES.search(f) for f in frames[-5:]):
            packages["(idle thread)"] += int(count)
            continue  # the server's stdin watcher, or a parked thread
        if frames[-1].startswith(("epoll_wait", "epoll_pwait")):
            packages["(poll)"] += int(count)
            continue
        owner = "other"
        for frame in reversed(frames):
            name = classify(frame)
            if name:
                owner = name
                if name == "anyio":
                    anyio_functions[re.sub(r":\d+\)", ")", frame.strip())] += int(count)
                break
        if SYSCALL_LEAVES.match(frames[-1].strip()):
            owner = f"syscall/{owner}"
        packages[owner] += int(count)
    return packages, anyio_functions


def record(py_spy: str, pid: int, seconds: float, native: bool, out: Path) -> str:
    cmd = [
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    # --native pauses the process to unwind it; without it py-spy need not.
    cmd.append("--native" if native else "--nonblocking")
    subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 120, check=True
    )
    return out.read_text()


def profile_server(
    sc: apps.Scenario, interp: _env.Interpreter, args: argparse.Namespace, work: Path
) -> str:
    server = apps.Server(interp, ["--app", sc.app, "--loop", sc.loop])
    try:
        apps.load(server.port, sc.path, 1.0, args.loadgen)
        loader = threading.Thread(
            target=apps.load,
            args=(server.port, sc.path, args.seconds + 3, args.loadgen),
        )
        loader.start()
        time.sleep(1.0)
        text = record(
            args.py_spy, server.pid, args.seconds, args.native, work / "s.txt"
        )
        loader.join()
        return text
    finally:
        server.stop()


def profile_child(
    sc: apps.Scenario, interp: _env.Interpreter, args: argparse.Namespace, work: Path
) -> str:
    echo = None
    if sc.kind == "client":
        echo = apps.Server(_env.raw(), ["--app", "echo", "--loop", "uvloop"])
        module = "bench.apps.client"
        extra = [
            "--port",
            str(echo.port),
            "--loop",
            sc.loop,
            "--mode",
            sc.mode,
            "--requests",
            "100000",
            "--duration",
            str(args.seconds + 4),
        ]
    else:
        module = "bench.apps.pipeline"
        extra = [
            "--backend",
            sc.loop,
            "--requests",
            "10000000",
            "--duration",
            str(args.seconds + 4),
        ]
    proc = subprocess.Popen(
        [interp.python, "-m", module, *extra],
        cwd=_env.ROOT,
        env=interp.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2.0)
        return record(args.py_spy, proc.pid, args.seconds, args.native, work / "c.txt")
    finally:
        proc.kill()
        proc.wait()
        if echo:
            echo.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.apps.profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--only", help="scenario patterns, as for --apps")
    p.add_argument("--impls", default="ours,upstream")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    p.add_argument("--native", action="store_true", help="unwind C/C++ frames too")
    p.add_argument("--loadgen", default="wrk" if shutil.which("wrk") else "python")
    p.add_argument("--top", type=int, default=6, help="anyio functions listed")
    p.add_argument(
        "--keep", type=Path, help="keep py-spy's raw stacks in this directory"
    )
    p.add_argument(
        "--ours-path",
        type=Path,
        help="import our anyio from this directory instead (e.g. a copy of python/ "
        "holding an unstripped RelWithDebInfo build of the extension, so the C++ "
        "frames have names)",
    )
    args = p.parse_args(argv)
    scenarios = apps.select(args.only)
    impls = [i for i in args.impls.split(",") if i]
    interps = {
        i: (_env.ours_apps(apps.log) if i == "ours" else _env.upstream_apps(apps.log))
        for i in impls
    }
    if args.ours_path and "ours" in interps:
        path = interps["ours"].pythonpath or ""
        interps["ours"] = _env.Interpreter(
            "ours",
            interps["ours"].python,
            os.pathsep.join([str(args.ours_path), *path.split(os.pathsep)[1:]]),
        )
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        work = Path(tmp)
        for sc in scenarios:
            for impl in impls:
                runner = profile_server if sc.kind == "server" else profile_child
                try:
                    text = runner(sc, interps[impl], args, work)
                except (subprocess.SubprocessError, RuntimeError, OSError) as exc:
                    print(f"{sc.key} {impl}: failed: {exc}")
                    continue
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    name = f"{sc.name}-{sc.loop}-{impl}.txt"
                    (args.keep / name).write_text(text)
                packages, functions = attribute(text)
                idle = packages.pop("(idle thread)", 0)
                total = sum(packages.values()) or 1
                shares = ", ".join(
                    f"{name} {count / total:.0%}"
                    for name, count in packages.most_common(8)
                )
                print(f"{sc.key} {impl}: {total} busy samples ({idle} idle): {shares}")
                for frame, count in functions.most_common(args.top):
                    print(f"    {count / total:6.1%}  {frame[:140]}")
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
