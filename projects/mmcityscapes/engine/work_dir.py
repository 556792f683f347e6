"""One training per work dir: a lock the kernel releases however its process ends."""
import fcntl
import os
import os.path as osp
import socket
from typing import IO, Union

from mmcityscapes.common.errors import UserError


def lock_work_dir(work_dir: str) -> IO:
    """Hold ``<work_dir>/.lock`` for as long as this process lives (``claim_work_dir``); raise
    ``UserError`` if another process holds it."""
    lock = claim_work_dir(work_dir)
    if isinstance(lock, str):
        raise UserError(f'{work_dir} is in use by {lock}: wait for it, stop it, or pass another --work-dir')
    return lock


def claim_work_dir(work_dir: str) -> Union[IO, str]:
    """Take ``<work_dir>/.lock`` and return the open lock file, which must be kept referenced;
    return its holder ("process <pid> on <host>") instead if another process has it. A POSIX
    record lock: the kernel releases it when the process ends, however it ends, and forked
    dataloader workers do not inherit it."""
    os.makedirs(work_dir, exist_ok=True)
    lock = open(osp.join(work_dir, '.lock'), 'a+')
    try:
        fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        holder = lock.read().strip() or 'another process'
        lock.close()
        return holder
    lock.truncate(0)
    lock.write(f'process {os.getpid()} on {socket.gethostname()}\n')
    lock.flush()
    return lock
