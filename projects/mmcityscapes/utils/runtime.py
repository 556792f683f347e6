"""Runtime set-up shared by the tools: checkpoint loading on torch >= 2.6, CPU-only DDP, one
training per work dir, and workers that die with their process."""
import ctypes
import fcntl
import importlib
import os
import os.path as osp
import re
import signal
import socket
import sys
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as torch_dist
from mmengine.dist import init_dist

from ..cityscapes.errors import UserError
from .checkpoint import allow_mmengine_checkpoints, latest_valid_checkpoint, resolve_checkpoint
from .config import check_dataset_files, check_hook_arguments


def _replace_sync_bn(node):
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
        for value in node.values():
            _replace_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _replace_sync_bn(value)


def die_with_parent():
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


def init_distributed(cfg):
    """Create the process group of a distributed launch (gloo for ``pytorch`` without CUDA:
    mmengine's own initialisation calls ``torch.cuda.set_device``). Here, before any Runner,
    because the plugin's runners communicate between the runs they chain."""
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch_dist.is_initialized():
        return
    if launcher == 'pytorch' and not torch.cuda.is_available():
        torch_dist.init_process_group(backend='gloo')
    else:
        init_dist(launcher, **cfg.get('env_cfg', {}).get('dist_cfg', {}))


@contextmanager
def standalone_processes(rejoin=True, timeout_s=1800):
    """Run the body in every process of a distributed launch as if each were launched alone:
    the process group is taken down, so mmengine's samplers, seeds, metrics and barriers see a
    world of one (each process keeps its GPU). With ``rejoin`` it is built again after the body,
    over the launch's own rendezvous store; a process that has not arrived after ``timeout_s``
    seconds stops the others with an error. Yields ``(rank, world_size)``, ``(0, 1)`` when not
    distributed."""
    if not torch_dist.is_initialized():
        yield 0, 1
        return
    rank, world_size, backend = torch_dist.get_rank(), torch_dist.get_world_size(), torch_dist.get_backend()
    store = torch_dist.distributed_c10d._get_default_store()  # kept: rank 0 may host it (env://)
    torch_dist.barrier()  # a process still connecting to the others would see its peer gone
    torch_dist.destroy_process_group()
    yield rank, world_size
    if rejoin:
        _REJOINS.append(rank)
        torch_dist.init_process_group(backend, store=torch_dist.PrefixStore(f'rejoin_{len(_REJOINS)}/', store),
                                      rank=rank, world_size=world_size, timeout=timedelta(seconds=timeout_s))


_REJOINS = []  # one entry per rebuilt process group: each rendezvous gets its own store keys


RUNTIME_HOOKS = ('ResumeValidationHook', 'PreemptionHook', 'LoadReportHook')


def prepare_runtime(cfg, splits=('train', 'val')):
    """Adapt ``cfg`` to this machine before the Runner is built.

    * the plugin's components are registered (``mmcityscapes.components``, which configs name
      in ``custom_imports``; a plain mmdet/mmseg config does not), for the hooks added here;
    * the annotation files and folders of ``splits`` exist, and every hook argument is one the hook
      takes (``check_dataset_files``, ``check_hook_arguments``); otherwise one line;
    * mmengine checkpoints (resume, ``load_from``) load with torch's ``weights_only`` loader;
    * forked workers die with this process (``die_with_parent``);
    * ``load_from`` may name a training work dir: its best checkpoint (``resolve_checkpoint``);
    * ``resume`` without a checkpoint resumes from the latest complete one of the work dir (a
      truncated latest one is skipped, with a message), or trains from scratch, saying so;
    * a resumed run validates first the step whose validation was interrupted (``ResumeValidationHook``);
    * SIGTERM/SIGUSR1 stop training after the current iteration with a checkpoint to resume from
      (``PreemptionHook``), and an epoch-based loop resumes within an epoch
      (``ResumableEpochBasedTrainLoop``);
    * a ``load_from`` that leaves tensors at their initialisation says which (``LoadReportHook``);
    * a distributed launch creates its process group (``init_distributed``);
    * ``--launcher pytorch`` without CUDA runs DDP on gloo: DDP gets no ``device_ids`` and
      SyncBN (CUDA-only) becomes BN.
    """
    importlib.import_module('mmcityscapes.components')
    check_dataset_files(cfg, splits)
    check_hook_arguments(cfg)
    allow_mmengine_checkpoints()
    die_with_parent()
    present = {hook['type'] for hook in cfg.get('custom_hooks', [])}
    cfg.custom_hooks = [*cfg.get('custom_hooks', []),
                        *(dict(type=name) for name in RUNTIME_HOOKS if name not in present)]
    loop = cfg.get('train_cfg') or {}
    if loop.get('type', 'EpochBasedTrainLoop' if loop.get('by_epoch') else None) == 'EpochBasedTrainLoop':
        loop.pop('by_epoch', None)
        loop['type'] = 'ResumableEpochBasedTrainLoop'
    if not cfg.get('resume'):
        cfg.load_from = resolve_checkpoint(cfg.get('load_from'), getattr(cfg, 'filename', None))
    elif not cfg.get('load_from'):
        cfg.load_from = latest_valid_checkpoint(cfg.work_dir)
        if cfg.load_from is None:
            print(f'--resume: no checkpoint in {cfg.work_dir}, training from scratch', file=sys.stderr)
            cfg.resume = False
    init_distributed(cfg)
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    _replace_sync_bn(cfg.get('model'))



@contextmanager
def naming_unreadable_images():
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


def lock_work_dir(work_dir):
    """Hold ``<work_dir>/.lock`` for as long as this process lives (``claim_work_dir``); raise
    ``UserError`` if another process holds it."""
    lock = claim_work_dir(work_dir)
    if isinstance(lock, str):
        raise UserError(f'{work_dir} is in use by {lock}: wait for it, stop it, or pass another --work-dir')
    return lock


def claim_work_dir(work_dir):
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
