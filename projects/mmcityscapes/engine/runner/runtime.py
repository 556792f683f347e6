"""Preparing a config to run on this machine: checks, the plugin's runtime hooks and loop,
checkpoints to load or resume, and DDP on CPU-only machines."""
import sys

import torch
from mmengine.config import Config

from mmcityscapes.engine.dist import init_distributed
from mmcityscapes.engine.hooks.load_report_hook import LoadReportHook
from mmcityscapes.engine.hooks.preemption_hook import PreemptionHook
from mmcityscapes.engine.hooks.resume_validation_hook import ResumeValidationHook
from mmcityscapes.engine.runner.loops import ResumableEpochBasedTrainLoop
from mmcityscapes.engine.workers import die_with_parent
from mmcityscapes.utils.checkpoint import allow_mmengine_checkpoints, latest_valid_checkpoint, resolve_checkpoint
from mmcityscapes.utils.config import check_dataset_files, check_hook_arguments


def _replace_sync_bn(node) -> None:
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
        for value in node.values():
            _replace_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _replace_sync_bn(value)


# Added to every run (imported here, so registered whether or not the config imports the plugin).
RUNTIME_HOOKS = (ResumeValidationHook, PreemptionHook, LoadReportHook)


def prepare_runtime(cfg: Config, splits=('train', 'val')) -> None:
    """Adapt ``cfg`` to this machine before the Runner is built.

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
    check_dataset_files(cfg, splits)
    check_hook_arguments(cfg)
    allow_mmengine_checkpoints()
    die_with_parent()
    present = {hook['type'] for hook in cfg.get('custom_hooks', [])}
    cfg.custom_hooks = [*cfg.get('custom_hooks', []),
                        *(dict(type=hook.__name__) for hook in RUNTIME_HOOKS if hook.__name__ not in present)]
    loop = cfg.get('train_cfg') or {}
    if loop.get('type', 'EpochBasedTrainLoop' if loop.get('by_epoch') else None) == 'EpochBasedTrainLoop':
        loop.pop('by_epoch', None)
        loop['type'] = ResumableEpochBasedTrainLoop.__name__
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
