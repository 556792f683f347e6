"""Dataloader workers: they die with their process, and an image one of them cannot decode is
named in one line."""
import ctypes
import os
import re
import signal
import sys
from contextlib import contextmanager
from typing import Iterator

from mmcityscapes.common.errors import UserError


def die_with_parent() -> None:
    """Make every process forked from now on (dataloader workers, pools) receive SIGKILL when
    its parent dies, even by kill -9, instead of living on as an orphan (Linux; idempotent)."""
    global _DIES_WITH_PARENT
    if _DIES_WITH_PARENT or not sys.platform.startswith('linux'):
        return
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    os.register_at_fork(after_in_child=lambda: prctl(PR_SET_PDEATHSIG, signal.SIGKILL))
    _DIES_WITH_PARENT = True


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_DIES_WITH_PARENT = False


@contextmanager
def naming_unreadable_images() -> Iterator[None]:
    """Turn mmcv's ``failed to load image: <path>`` (an image that passed the pre-flight checks
    but does not decode), raised in a dataloader worker whose whole traceback torch repeats,
    into one line naming the file."""
    try:
        yield
    except Exception as e:
        found = re.findall(r'failed to load image: (\S+)', str(e))  # the last: the message, not the source line
        if not found:
            raise
        raise UserError(f'cannot decode image {found[-1]} (corrupt): replace it, then continue with --resume') from None
