"""Load mmengine checkpoints with torch's safe (``weights_only``) unpickler.

Since torch 2.6, ``torch.load`` only unpickles allow-listed globals, and mmengine 0.10.7
checkpoints hold its message hub: ``HistoryBuffer`` objects with numpy arrays and scalars, and
the buffer's statistics methods, pickled as ``getattr(HistoryBuffer, 'mean')``. Rather than
turning ``weights_only`` off, these globals are allow-listed; ``getattr`` is replaced by a
function that resolves only those four methods.
"""
import pickle

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from numpy._core import multiarray

HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def history_buffer_method(obj, name):
    """Stand-in for ``builtins.getattr`` while unpickling: HistoryBuffer's statistics only."""
    if obj is HistoryBuffer and name in HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'checkpoint asks for getattr({obj!r}, {name!r}), which is not allowed')


def allow_mmengine_checkpoints():
    """Allow-list the globals of mmengine checkpoints (idempotent)."""
    dtype_classes = {type(np.dtype(code)) for code in np.typecodes['All'] if code != 'O'}
    torch.serialization.add_safe_globals([
        HistoryBuffer, np.ndarray, np.dtype, *dtype_classes, multiarray._reconstruct, multiarray.scalar,
        (history_buffer_method, 'builtins.getattr'),
        # checkpoints written with numpy < 2 name the same functions under numpy.core
        (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
        (multiarray.scalar, 'numpy.core.multiarray.scalar'),
    ])
