"""Train a Cityscapes model (any mmseg or mmdet config) with mmengine's Runner.

    python tools/train.py configs/deeplabv3_r50.py
    python tools/train.py CONFIG --work-dir work_dirs/x --cfg-options train_cfg.max_iters=500
    python tools/train.py CONFIG --resume                   # latest checkpoint in the work dir
    python tools/train.py CONFIG --tensorboard              # + TensorBoard logs: tensorboard --logdir work_dirs
    bash tools/dist_train.sh CONFIG 8                        # 8 GPUs (gloo on CPU-only machines)

Runs go to ``work_dirs/<config name>/`` unless ``--work-dir`` is given. Configs may set
``runner_type``: the plugin's cross-validation runner (configs/unet_r34_cv5.py) and staged runner
(configs/maskrcnn_staged.py) train a sequence of runs in that work dir. A missing checkpoint or
dataset file stops with one line naming it, and so does an image that does not decode, or a second
training into a work dir that another process is training into. SIGTERM or SIGUSR1 (Slurm's
preemption and time-limit signals) and the first Ctrl-C (SIGINT) stop training after the current
iteration with a checkpoint, exit status 75; ``--resume`` continues there. ``--resume`` with a config
that differs from the checkpoint's stops in one line naming the changed keys; ``--allow-changes``
continues with the new values (optimizer settings, schedules) and logs them. Training stops at the
first NaN or infinite loss (exit status 2), keeping the last checkpoint.
"""
import argparse
import os

from mmengine.config import DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmcityscapes.common.errors import run_tool
from mmcityscapes.common.io import check_writable
from mmcityscapes.engine.dist import init_distributed
from mmcityscapes.engine.hooks.apply_changes_hook import ApplyConfigChangesHook
from mmcityscapes.engine.optimizers import PortableAmpOptimWrapper
from mmcityscapes.engine.runner.runtime import prepare_runtime
from mmcityscapes.engine.work_dir import lock_work_dir
from mmcityscapes.engine.workers import naming_unreadable_images
from mmcityscapes.utils.config import load_config, work_dir_of


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentation or detection model')
    parser.add_argument('config', help='config file')
    run = parser.add_argument_group('run')
    run.add_argument('--work-dir', help='where logs and checkpoints go (default: work_dirs/<config>)')
    run.add_argument('--resume', nargs='?', const='auto',
                     help='resume from CHECKPOINT, or from the latest checkpoint of the work dir')
    run.add_argument('--allow-changes', action='store_true',
                     help='with --resume: continue although the config differs from the checkpoint\'s, with the new '
                     'optimizer settings and schedules')
    run.add_argument('--cfg-options', nargs='+', action=DictAction,
                     help='override config keys, e.g. train_cfg.max_iters=100')
    speed = parser.add_argument_group('speed')
    speed.add_argument('--amp', action='store_true', help='automatic mixed precision')
    speed.add_argument('--auto-scale-lr', action='store_true',
                       help='scale the lr by total batch size / auto_scale_lr.base_batch_size')
    run.add_argument('--tensorboard', action='store_true',
                     help='also log to TensorBoard (tensorboard --logdir WORK_DIR)')
    dist = parser.add_argument_group('distributed')
    dist.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    dist.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def launch_rank():
    """This process's global rank as the launcher (torchrun, Slurm, MPI) tells it; 0 alone."""
    return int(next((os.environ[k] for k in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK') if k in os.environ), 0))


def main():
    args = parse_args()
    train(args)


def train(args):
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = work_dir_of(cfg, args.config, args.work_dir)
    check_writable(cfg.work_dir, '--work-dir')
    if args.amp:  # merged, so that a runner config passes them on to each of its runs
        cfg.merge_from_dict({'optim_wrapper.type': PortableAmpOptimWrapper.__name__, 'optim_wrapper.loss_scale':
                             cfg.get('optim_wrapper', {}).get('loss_scale', 'dynamic')})
    if args.auto_scale_lr:
        cfg.merge_from_dict({'auto_scale_lr.enable': True})
    if args.tensorboard:
        backends = cfg.get('visualizer', {}).get('vis_backends') or [dict(type='LocalVisBackend')]
        cfg.merge_from_dict({'visualizer.vis_backends': [*backends, dict(type='TensorboardVisBackend')]})
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    runner_config = 'runner_type' in cfg  # a sequence of runs, each prepared by the runner
    changes = None if runner_config else prepare_runtime(cfg, allow_changes=args.allow_changes)
    if launch_rank() == 0:  # one launch per work dir; its rank 0 holds the lock
        work_dir_lock = lock_work_dir(cfg.work_dir)  # noqa: F841 (released when the process ends)
    with naming_unreadable_images():
        if runner_config:
            init_distributed(cfg)
            RUNNERS.build(cfg).train()
            return
        runner = Runner.from_cfg(cfg)
        if changes:
            runner.register_hook(ApplyConfigChangesHook(changes))
        runner.train()


if __name__ == '__main__':
    run_tool(main)
