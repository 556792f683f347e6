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
import re
import sys
import zipfile
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from numpy._core import multiarray

from mmcityscapes.common.errors import UserError

HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def history_buffer_method(obj: Any, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` while unpickling: HistoryBuffer's statistics only."""
    if obj is HistoryBuffer and name in HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'checkpoint asks for getattr({obj!r}, {name!r}), which is not allowed')


def allow_mmengine_checkpoints() -> None:
    """Allow-list the globals of mmengine checkpoints (idempotent)."""
    dtype_classes = {type(np.dtype(code)) for code in np.typecodes['All'] if code != 'O'}
    torch.serialization.add_safe_globals([
        HistoryBuffer, np.ndarray, np.dtype, *dtype_classes, multiarray._reconstruct, multiarray.scalar,
        (history_buffer_method, 'builtins.getattr'),
        # checkpoints written with numpy < 2 name the same functions under numpy.core
        (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
        (multiarray.scalar, 'numpy.core.multiarray.scalar'),
    ])


allow_mmengine_checkpoints()  # every reader of checkpoints imports this module


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``last_checkpoint`` names (recorded relative to the run's cwd, so taken
    by name inside ``work_dir``), or None."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        return osp.join(work_dir, osp.basename(f.read().strip()))


def saved_config(checkpoint: str) -> Optional[Config]:
    """The config a checkpoint was trained with (mmengine saves its text in the meta), or None."""
    meta = torch.load(checkpoint, map_location='cpu', weights_only=True, mmap=True).get('meta') or {}
    return Config.fromstring(meta['cfg'], file_format='.py') if meta.get('cfg') else None


def best_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint a training run in ``work_dir`` ends with: the best one by ``save_best``, as
    CheckpointHook records it in the message hub of the latest checkpoint (it saves that again
    after every new best), else the latest. None if the work dir holds no checkpoint."""
    latest = latest_checkpoint(work_dir)
    if latest is None:
        return None
    hub = torch.load(latest, map_location='cpu', weights_only=True, mmap=True)['message_hub']
    best = sorted({v for k, v in hub['runtime_info'].items() if k == 'best_ckpt' or k.startswith('best_ckpt_')})
    if len(best) > 1:
        names = ', '.join(map(osp.basename, best))
        raise UserError(f'{work_dir} keeps a best checkpoint per metric ({names}): name one, not the directory')
    return osp.join(work_dir, osp.basename(best[0])) if best else latest


def resolve_checkpoint(path: Optional[str], config_file: Optional[str] = None) -> Optional[str]:
    """``path`` itself, or for a training work dir (``work_dirs/maskrcnn_stage1/``) its
    ``best_checkpoint``; a work dir that holds none stops with one line saying what to train: the
    config beside ``config_file`` (the config that asks for it) whose default work dir holds
    ``path`` (``work_dirs/maskrcnn_staged/maskrcnn_stage3/``: ``maskrcnn_staged.py``)."""
    if not path or not osp.isdir(path) and not path.endswith('/'):
        return path
    found = best_checkpoint(path) if osp.isdir(path) else None
    if found is None:
        parts = osp.normpath(path).split(osp.sep)
        name = parts[parts.index('work_dirs') + 1] if 'work_dirs' in parts[:-1] else parts[-1]
        sibling = osp.join(osp.dirname(config_file), f'{name}.py') if config_file else None
        if sibling and osp.isfile(sibling):
            relative = osp.relpath(sibling)
            hint = f'python tools/train.py {sibling if relative.startswith("..") else relative}'
        else:
            hint = f'train a config into {path}'
        raise UserError(f'{path} holds no trained checkpoint: run `{hint}` first')
    return found


class Checkpoint:
    """A checkpoint file read once, with the safe loader: its tensors (``state``, without a
    ``module.`` prefix) and ``meta``. Every tool and hook that takes a checkpoint reads it
    through ``Checkpoint.read`` and loads it through ``load_into``, which checks the fit first."""

    def __init__(self, path: str, state: Dict[str, torch.Tensor], meta: dict) -> None:
        self.path, self.state, self.meta = path, state, meta

    @classmethod
    def read(cls, path: str) -> 'Checkpoint':
        """The checkpoint at ``path``, or one line saying why it cannot be read (missing,
        truncated, corrupt, or holding objects the safe loader refuses)."""
        if not osp.isfile(path):
            raise UserError(f'checkpoint not found: {path}')
        try:
            content = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as e:  # torch reports truncation, corruption and refused globals each its own way
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f'cannot read checkpoint {path}: {reason}') from None
        if not isinstance(content, dict):
            raise UserError(f'{path} holds a {type(content).__name__}, not a checkpoint')
        state = content.get('state_dict', content)
        state = {re.sub(r'^module\.', '', key): value for key, value in state.items()}
        bad, total = non_finite_tensors(state)
        if bad:  # a diverged training's weights: any result from them would be meaningless
            raise UserError(f'{path} holds NaN or infinite values in {len(bad)} of its {total} tensors '
                            f'(e.g. {bad[0]}): its training diverged; use an earlier checkpoint')
        return cls(path, state, content.get('meta') or {})

    def tensors_for(self, module: torch.nn.Module, prefix: str = '', min_fraction: float = 1.0,
                    what: str = 'this model') -> Dict[str, torch.Tensor]:
        """The tensors of ``module`` that the checkpoint holds under ``prefix`` (``backbone.``),
        in the module's names. Stops with one line (how many tensors are missing or shaped
        otherwise, one of them, the run the checkpoint was trained in) when any has another
        shape or fewer than ``min_fraction`` of the module's tensors are there: a wrong
        checkpoint would load with warnings and score zero."""
        expected = module.state_dict()
        source = {key[len(prefix):]: value for key, value in self.state.items() if key.startswith(prefix)}
        missing, shaped = unfitting_tensors(expected, source)
        origin = f'; it was trained as {self.meta["experiment_name"]}' if self.meta.get('experiment_name') else ''
        if shaped:
            key = shaped[0]
            raise UserError(f'{self.path} does not fit {what}: {len(shaped)} of its {len(expected)} tensors '
                            f'have other shapes (e.g. {key}: {tuple(source[key].shape)} in the checkpoint, '
                            f'{tuple(expected[key].shape)} in the model){origin}')
        if len(expected) - len(missing) < min_fraction * len(expected):
            raise UserError(f'{self.path} does not fit {what}: {len(missing)} of its {len(expected)} '
                            f'tensors are missing (e.g. {missing[0]}){origin}')
        return {key: source[key] for key in expected if key in source}

    def load_into(self, module: torch.nn.Module, prefix: str = '', min_fraction: float = 1.0,
                  what: str = 'this model') -> int:
        """Copy ``tensors_for(module, ...)`` into ``module``; returns how many were copied."""
        tensors = self.tensors_for(module, prefix, min_fraction, what)
        module.load_state_dict(tensors, strict=False)
        return len(tensors)


def non_finite_tensors(state: Dict[str, torch.Tensor]) -> Tuple[List[str], int]:
    """(the names of the floating-point tensors holding NaN or infinite values, the number of
    tensors)."""
    bad = [key for key, value in state.items()
           if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all()]
    return bad, len(state)


def unfitting_tensors(model_state: dict, state: dict) -> Tuple[List[str], List[str]]:
    """The keys of ``model_state`` that ``state`` lacks, and those it holds in another shape."""
    missing = [key for key in model_state if key not in state]
    shaped = [key for key, value in model_state.items()
              if key in state and tuple(state[key].shape) != tuple(value.shape)]
    return missing, shaped


def latest_valid_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint to resume from: the latest one (``last_checkpoint``) if it is complete,
    else the newest complete ``epoch_*.pth``/``iter_*.pth`` (a kill while writing truncates a
    checkpoint), saying so; None if there is none."""
    latest = latest_checkpoint(work_dir)
    ordered = [latest] if latest else []
    step = lambda path: int(re.search(r'_(\d+)\.pth$', path).group(1))  # noqa: E731
    ordered += sorted(glob.glob(osp.join(work_dir, 'epoch_*.pth')) + glob.glob(osp.join(work_dir, 'iter_*.pth')),
                      key=step, reverse=True)
    for path in dict.fromkeys(ordered):  # in order, without repeats
        if osp.isfile(path) and zipfile.is_zipfile(path):  # torch.save writes a zip; truncation cuts its end
            return path
        if osp.exists(path) or path == ordered[0]:
            print(f'{path} is missing, truncated or corrupt: resuming from an earlier checkpoint', file=sys.stderr)
    return None
