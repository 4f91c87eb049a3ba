"""The audit events (`sys.addaudithook`) that mean code from a file ran, in one place for both
watchers: `hostile_corpus.ExecutionMonitor` (in the test process) and the fork server's children
in `case_runner.py` (which imports only the standard library, hence this small module)."""

from __future__ import annotations

import os

#: a process being started, by any of the ways Python offers
SPAWN_EVENTS = (
    "os.system",
    "subprocess.Popen",
    "os.exec",
    "os.spawn",
    "os.posix_spawn",
    "os.fork",
)
#: what a reader must never cause: spawns, code objects run, pickle global lookups, deletions, connections
EXECUTION_EVENTS = SPAWN_EVENTS + (
    "exec",
    "pickle.find_class",
    "shutil.rmtree",
    "os.remove",
    "socket.connect",
)


def is_module_import(code: object) -> bool:
    """True for the code object of a module file being imported (a real .py file on disk): a lazy
    import inside torch or the standard library runs its module file, not file content."""
    filename = getattr(code, "co_filename", "")
    return getattr(code, "co_name", "") == "<module>" and filename.endswith(".py") and os.path.isfile(filename)
