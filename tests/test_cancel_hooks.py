"""The hooks the C++ cancel scopes and task groups call back into.

Python hands them over with ``_cpp.register_hooks`` when ``anyio._cancel``,
``anyio._cancel_trio`` and ``anyio._taskgroup`` are imported. A hook of the
wrong kind must raise, never crash the interpreter, and importing the cancel
scopes must not import Trio.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import anyio
from anyio import _cpp
from anyio._taskgroup import TaskHandle

PYTHON_DIR = str(Path(anyio.__file__).resolve().parent.parent)


async def _noop() -> None:
    pass


def test_task_handle_class_hook_must_be_a_task_handle() -> None:
    async def main() -> None:
        async with anyio.create_task_group() as tg:
            _cpp.register_hooks(task_handle_class=dict)
            try:
                with pytest.raises(TypeError, match="subclass of TaskHandleBase"):
                    tg.start_soon(_noop)
            finally:
                _cpp.register_hooks(task_handle_class=TaskHandle)
            handle = tg.start_soon(_noop)
            assert isinstance(handle, TaskHandle)

    anyio.run(main, backend="asyncio")


def test_unknown_hook_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unknown hook"):
        _cpp.register_hooks(trio_scope_leave=print)


def test_cancel_scopes_register_their_hooks_without_importing_trio() -> None:
    code = (
        "import sys\n"
        "import anyio\n"
        "from anyio import _cancel\n"
        "assert 'anyio._cancel_trio' in sys.modules\n"
        "assert 'trio' not in sys.modules, 'importing the cancel scopes imported trio'\n"
        "async def main():\n"
        "    try:\n"
        "        with anyio.CancelScope() as scope:\n"
        "            scope.cancel()\n"
        "            raise BaseExceptionGroup('g', [ValueError(1)])\n"
        "    except BaseExceptionGroup as group:\n"
        "        assert group.exceptions[0].args == (1,)\n"
        "    else:\n"
        "        raise AssertionError('the group was swallowed')\n"
        "anyio.run(main)\n"
    )
    if sys.version_info < (3, 11):
        code = "from exceptiongroup import BaseExceptionGroup\n" + code
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": PYTHON_DIR},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
