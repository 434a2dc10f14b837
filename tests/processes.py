"""Stopping servers that tests start as subprocesses."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen, *, timeout: float = 10.0) -> None:
    """Ask the process to stop, and kill it when it does not within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
