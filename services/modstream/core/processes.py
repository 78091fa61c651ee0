"""Whether processes we signalled have exited: the stack's stop and the chaos run's kills."""

import time

import psutil


def exited(process: psutil.Process) -> bool:
    """Gone, or a zombie: when another process started it (a test, say) and has not reaped it
    yet, waiting for it to vanish would only wait out a timeout. Our own child is reaped here."""
    try:
        process.wait(timeout=0)
        return True
    except psutil.TimeoutExpired:
        try:
            return bool(process.status() == psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return True
    except psutil.NoSuchProcess:
        return True


def wait_exited(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until each has exited; those still running at the timeout."""
    deadline = time.monotonic() + timeout
    alive = processes
    while alive:
        alive = [process for process in alive if not exited(process)]
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return alive
