"""Peak resident memory of a piece of work, measured in a fresh subprocess (Linux /proc)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Large blocks via mmap are returned to the OS on free, so RSS tracks live tensors (glibc
# would otherwise keep freed heap resident and hide the next step's peak).
ISOLATED_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark to the current RSS; returns current RSS in KiB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kib("VmRSS")


def peak_rss_kib() -> int:
    return _status_kib("VmHWM")


def run_isolated(module: str, function: str, **kwargs) -> dict:
    """Call module.function(**kwargs) in a new Python process; it returns a JSON-able dict."""
    return _run(module, function, kwargs, ISOLATED_ENV)


def run_plain(module: str, function: str, **kwargs) -> dict:
    """run_isolated without ISOLATED_ENV: the allocator as a user's process has it."""
    return _run(module, function, kwargs, {})


def _run(module: str, function: str, kwargs: dict, env: dict[str, str]) -> dict:
    code = (
        f"import json, sys; from {module} import {function} as f; "
        f"print('@@' + json.dumps(f(**json.loads(sys.argv[1]))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(kwargs)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module}.{function}({kwargs}) failed:\n{proc.stderr[-3000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("@@"))
    return json.loads(line[2:])
