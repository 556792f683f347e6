"""Load mmengine checkpoints with torch's safe (``weights_only``) unpickler.

Since torch 2.6, ``torch.load`` only unpickles allow-listed types. mmengine 0.10.7 checkpoints
also hold the message hub (``HistoryBuffer`` with numpy arrays and scalars), so resuming fails.
Instead of turning ``weights_only`` off, the few types they contain are allow-listed.
"""
import numpy as np
import torch
from mmengine.logging import HistoryBuffer


def _numpy_globals():
    from numpy._core import multiarray
    dtype_classes = {type(np.dtype(code)) for code in np.typecodes['All'] if code not in 'O'}
    return [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar, *dtype_classes,
            # pickles written with numpy < 2 name the same functions under numpy.core
            (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
            (multiarray.scalar, 'numpy.core.multiarray.scalar')]


def allow_mmengine_checkpoints():
    """Allow-list the types mmengine checkpoints pickle (idempotent)."""
    torch.serialization.add_safe_globals([HistoryBuffer, *_numpy_globals()])
