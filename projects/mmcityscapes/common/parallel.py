"""A parallel map with a progress bar that never leaves a half-written file behind."""
import multiprocessing
from typing import Any, Callable, Sequence, Tuple

from tqdm import tqdm


def _guarded(job: Tuple[Callable, Any]) -> Tuple[bool, Any]:
    func, task = job
    try:
        return True, func(task)
    except Exception as e:  # re-raised by the parent once the pool has finished
        return False, e


def track_parallel(func: Callable[[Any], Any], tasks: Sequence[Any], nproc: int) -> list:
    """``[func(t) for t in tasks]`` in ``nproc`` processes, in order, with a progress bar.

    A task's exception is raised only after every worker has finished its tasks and the pool
    has shut down normally: terminating workers mid-write (as leaving a ``Pool`` context on an
    error does) would leave temporary files behind, and a dangling pool prints tracebacks at
    exit after the one-line error.
    """
    results, error, bar = [], None, tqdm(total=len(tasks), unit='task', mininterval=1)
    with multiprocessing.get_context('fork').Pool(max(1, nproc)) as pool:
        jobs = [(func, task) for task in tasks]
        for ok, value in pool.imap(_guarded, jobs, chunksize=max(1, len(tasks) // (8 * max(1, nproc)))):
            if ok:
                results.append(value)
            elif error is None:
                error = value
            bar.update()
        pool.close()
        pool.join()
    bar.close()
    if error is not None:
        raise error
    return results
