"""Load mmengine checkpoints with torch's safe (``weights_only``) unpickler.

Since torch 2.6, ``torch.load`` only unpickles allow-listed globals, and mmengine 0.10.7
checkpoints hold its message hub: ``HistoryBuffer`` objects with numpy arrays and scalars, and
the buffer's statistics methods, pickled as ``getattr(HistoryBuffer, 'mean')``. Rather than
turning ``weights_only`` off, these globals are allow-listed; ``getattr`` is replaced by a
function that resolves only those four methods.
"""
import glob
import os.path as osp
import pickle

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from numpy._core import multiarray


class CheckpointError(Exception):
    """A missing or unusable checkpoint; the message names it and fits on one line."""


REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
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


def best_checkpoint(work_dir):
    """The checkpoint a training run in ``work_dir`` ends with: the best one by ``save_best``, as
    CheckpointHook records it in the message hub of the latest checkpoint (it saves that again
    after every new best), else the latest. None if the work dir holds no checkpoint."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:  # paths are recorded as the run saw them: relative to its cwd
        latest = osp.join(work_dir, osp.basename(f.read().strip()))
    hub = torch.load(latest, map_location='cpu', weights_only=True, mmap=True)['message_hub']
    best = sorted({v for k, v in hub['runtime_info'].items() if k == 'best_ckpt' or k.startswith('best_ckpt_')})
    if len(best) > 1:
        names = ', '.join(map(osp.basename, best))
        raise CheckpointError(f'{work_dir} keeps a best checkpoint per metric ({names}): name one, not the directory')
    return osp.join(work_dir, osp.basename(best[0])) if best else latest


def resolve_checkpoint(path):
    """``path`` itself, or for a training work dir (``work_dirs/maskrcnn_stage1/``) its
    ``best_checkpoint``; a work dir that holds none stops with one line saying what to train."""
    if not path or not osp.isdir(path) and not path.endswith('/'):
        return path
    found = best_checkpoint(path) if osp.isdir(path) else None
    if found is None:
        name = osp.basename(osp.normpath(path))
        configs = glob.glob(f'configs/**/{name}.py', root_dir=REPO, recursive=True)
        hint = f'python tools/train.py {configs[0]}' if configs else f'train a config into {path}'
        raise CheckpointError(f'{path} holds no trained checkpoint: run `{hint}` first')
    return found
