"""Preparing a config to run on this machine: checks, the plugin's runtime hooks and loop,
checkpoints to load or resume, and DDP on CPU-only machines."""
import sys
from typing import Any, List, Sequence, Tuple

import torch
from mmengine.config import Config

from mmcityscapes.common.errors import UserError
from mmcityscapes.datasets.preflight import check_dataset_files
from mmcityscapes.engine.dist import init_distributed
from mmcityscapes.engine.hooks.finite_training_hook import FiniteTrainingHook
from mmcityscapes.engine.hooks.load_report_hook import LoadReportHook
from mmcityscapes.engine.hooks.preemption_hook import PreemptionHook
from mmcityscapes.engine.hooks.release_workers_hook import ReleaseWorkersHook
from mmcityscapes.engine.hooks.resume_validation_hook import ResumeValidationHook
from mmcityscapes.engine.runner.loops import ResumableEpochBasedTrainLoop
from mmcityscapes.engine.storage import AtomicLocalBackend  # noqa: F401 (registers it for local paths)
from mmcityscapes.engine.workers import die_with_parent
from mmcityscapes.utils.build_checks import check_buildable, check_hook_arguments
from mmcityscapes.utils.checkpoint import (
    allow_mmengine_checkpoints,
    latest_valid_checkpoint,
    resolve_checkpoint,
    saved_config,
)
from mmcityscapes.utils.config import config_changes
from mmcityscapes.utils.tasks import check_evaluated_tasks


def _replace_sync_bn(node: Any) -> None:
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
        for value in node.values():
            _replace_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _replace_sync_bn(value)


# Added to every run (imported here, so registered whether or not the config imports the plugin).
RUNTIME_HOOKS = (FiniteTrainingHook, ResumeValidationHook, PreemptionHook, LoadReportHook, ReleaseWorkersHook)


def prepare_runtime(cfg: Config, splits: Sequence[str] = ('train', 'val'),
                    allow_changes: bool = False) -> List[Tuple[str, object, object]]:
    """Adapt ``cfg`` to this machine before the Runner is built.

    * the annotation files and folders of ``splits`` exist, their evaluators score results the
      model gives, and every hook argument is one the hook takes (``check_dataset_files``,
      ``check_evaluated_tasks``, ``check_hook_arguments``), and for training the dataloaders'
      sizes and the model's constructors take the config (``check_buildable``); otherwise one line;
    * mmengine checkpoints (resume, ``load_from``) load with torch's ``weights_only`` loader;
    * forked workers die with this process (``die_with_parent``);
    * ``load_from`` may name a training work dir: its best checkpoint (``resolve_checkpoint``);
    * ``resume`` without a checkpoint resumes from the latest complete one of the work dir (a
      truncated latest one is skipped, with a message), or trains from scratch, saying so; a config
      that differs from the checkpoint's stops with one line, unless ``allow_changes``
      (``resumed_config_changes``): the changes are returned for ``ApplyConfigChangesHook``;
    * a resumed run validates first the step whose validation was interrupted (``ResumeValidationHook``);
    * SIGTERM/SIGUSR1 stop training after the current iteration with a checkpoint to resume from
      (``PreemptionHook``), and an epoch-based loop resumes within an epoch
      (``ResumableEpochBasedTrainLoop``);
    * a ``load_from`` that leaves tensors at their initialisation says which (``LoadReportHook``);
    * the dataloader workers stop when the run ends, not when the Runner is collected (``ReleaseWorkersHook``);
    * checkpoints are written to a temporary name and renamed when complete (``AtomicLocalBackend``);
    * training stops at the first non-finite loss, and no checkpoint of non-finite weights is
      written (``FiniteTrainingHook``);
    * a distributed launch creates its process group (``init_distributed``);
    * ``--launcher pytorch`` without CUDA runs DDP on gloo: DDP gets no ``device_ids`` and
      SyncBN (CUDA-only) becomes BN.
    """
    check_dataset_files(cfg, splits)
    check_evaluated_tasks(cfg, [split for split in splits if split != 'train'])
    check_hook_arguments(cfg)
    if 'train' in splits:
        check_buildable(cfg)
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
    if cfg.get('launcher', 'none') == 'pytorch' and not torch.cuda.is_available():
        use_gloo_ddp(cfg)
    return resumed_config_changes(cfg, allow_changes) if cfg.get('resume') else []


def use_gloo_ddp(cfg: Config) -> None:
    """DDP on gloo for ``--launcher pytorch`` without CUDA: no ``device_ids``, BN for SyncBN."""
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    _replace_sync_bn(cfg.get('model'))


def resumed_config_changes(cfg: Config, allow_changes: bool) -> List[Tuple[str, object, object]]:
    """The config values that differ from those the resumed checkpoint was trained with
    (``config_changes``, launch settings and the dataset's location aside). mmengine would resume
    the checkpoint's optimizer and schedule while the work dir's records claim the new values, so
    a change stops with one line naming the keys, unless ``allow_changes``: then they are returned,
    for ``ApplyConfigChangesHook`` to apply."""
    saved = saved_config(cfg.load_from)
    changes = config_changes(saved, cfg) if saved is not None else []
    if changes and not allow_changes:
        shown = ', '.join(f'{key} {old!r} -> {new!r}' for key, old, new in changes[:3])
        more = f' and {len(changes) - 3} more' if len(changes) > 3 else ''
        raise UserError(f'--resume: the config differs from the one {cfg.load_from} was trained with ({shown}{more}): '
                        'add --allow-changes to continue with the new values, or train into another --work-dir')
    return changes
