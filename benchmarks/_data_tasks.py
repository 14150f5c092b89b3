"""Tasks of bench_data.py (importable in every interpreter and process)."""


def wait_at(barrier, timeout=60):
    """Waits at a shared Barrier: returns once every worker of the pool got there."""
    barrier.wait(timeout)
    return True
