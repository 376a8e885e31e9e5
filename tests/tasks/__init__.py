"""Small programs that tests and benchmarks run as tasks."""

import stat
import sys
from pathlib import Path


def _open_to_all(path: Path) -> bool:
    """Every directory above ``path`` searchable and the file executable by anyone."""
    real = path.resolve()
    try:
        if not real.stat().st_mode & stat.S_IXOTH:
            return False
        return all(p.stat().st_mode & stat.S_IXOTH for p in real.parents)
    except OSError:
        return False


# Tasks run as uids of their own: the interpreter a task starts must be one such a uid can reach
# (the tests' own may live in a private home, as under /root/.pyenv on the CI machine).
_CANDIDATES = (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3")
TASK_PYTHON = next((p for p in _CANDIDATES if _open_to_all(Path(p))), sys.executable)
TINYHTTP = f"{TASK_PYTHON} -S {Path(__file__).parent / 'tinyhttp.py'}"
BURN = f"{TASK_PYTHON} -S {Path(__file__).parent / 'burn.py'}"
