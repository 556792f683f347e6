"""Optuna search of stage-2 IoU thresholds and FPN gradient flow on the tuning subset.

    python tools/tune.py configs/maskrcnn_stage2.py --trials 20
    python tools/tune.py CONFIG --trials 40 --storage postgresql://host/db   # several machines

Search space (seed stage 2): RoI-head foreground IoU threshold, RPN positive and negative IoU
thresholds, and FPN gradient flow (trainable / reduced lr / frozen). Each trial trains the
config for ``--epochs`` on the tuning subset
(``annotations/instancesonly_filtered_gtFine_train_tune.json``), validates after every epoch and
maximises val mask mAP; Optuna's median pruner stops trials that fall behind.

The study lives in SQLite under the work dir by default, so an interrupted study resumes, or in
any database given by ``--storage``: start this command on several machines and they share the
trials (Optuna's distributed mode). When the last trial finishes, the best parameters are written
as the config that configs/maskrcnn_stage2.py inherits (``--out``), and the study is plotted
(optimisation history and parameter importances) as PNGs in the work dir.
"""
import argparse
import copy
import os
import os.path as osp
import random
import sys
import time

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import sqlalchemy  # noqa: E402
from optuna.storages import RDBStorage  # noqa: E402
from optuna.study import MaxTrialsCallback  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from projects.mmcityscapes.utils.io import write_text  # noqa: E402
from projects.mmcityscapes.utils.runtime import innermost_dataset, prepare_runtime  # noqa: E402

OBJECTIVE = 'coco/segm_mAP'
FPN_FLOW = {'trainable': 1.0, 'reduced': 0.1, 'frozen': 0.0}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='stage-2 config')
    study = parser.add_argument_group('study')
    study.add_argument('--trials', type=int, default=20, help='trials of the whole study (all workers)')
    study.add_argument('--study-name', help='default: the config name')
    study.add_argument('--storage', help='Optuna storage URL (default: SQLite in the work dir)')
    study.add_argument('--out', default='configs/_base_/tuned/hyperparams.py', help='best-parameter config')
    trial = parser.add_argument_group('each trial')
    trial.add_argument('--epochs', type=int, default=3, help='epochs over the tuning subset')
    trial.add_argument('--tune-ann', default='annotations/instancesonly_filtered_gtFine_train_tune.json',
                       help='training annotations of the tuning subset, relative to the data root')
    trial.add_argument('--load-from', help='starting weights (default: the config\'s load_from, stage 1)')
    trial.add_argument('--work-dir', help='default: work_dirs/tune_<config name>')
    trial.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


class PruningHook(Hook):
    """Report the objective after each validation; stop the trial when Optuna prunes it."""

    priority = 'LOW'

    def __init__(self, trial):
        self.trial, self.values = trial, []

    def after_val_epoch(self, runner, metrics=None):
        self.values.append(float(metrics[OBJECTIVE]))
        self.trial.report(self.values[-1], step=len(self.values))
        if self.trial.should_prune():
            raise optuna.TrialPruned(f'{OBJECTIVE} {self.values[-1]:.4f} after {len(self.values)} epochs')


def suggest(trial):
    pos = trial.suggest_float('rpn_pos_iou_thr', 0.5, 0.8)
    return dict(
        rcnn_fg_iou_thr=trial.suggest_float('rcnn_fg_iou_thr', 0.4, 0.7),
        rpn_pos_iou_thr=pos,
        rpn_neg_iou_thr=trial.suggest_float('rpn_neg_iou_thr', 0.2, min(0.4, pos - 0.1)),
        fpn_lr_mult=FPN_FLOW[trial.suggest_categorical('fpn_flow', list(FPN_FLOW))])


def trial_config(base, params, args, number):
    cfg = copy.deepcopy(base)
    train_cfg = cfg.model.train_cfg
    train_cfg.rpn.assigner.update(pos_iou_thr=params['rpn_pos_iou_thr'], neg_iou_thr=params['rpn_neg_iou_thr'])
    fg = params['rcnn_fg_iou_thr']
    train_cfg.rcnn.assigner.update(pos_iou_thr=fg, neg_iou_thr=fg, min_pos_iou=fg)
    cfg.optim_wrapper.setdefault('paramwise_cfg', {}).setdefault('custom_keys', {})['neck'] = dict(
        lr_mult=params['fpn_lr_mult'], decay_mult=params['fpn_lr_mult'])
    loader = cfg.train_dataloader
    loader.sampler = dict(type='DefaultSampler', shuffle=True)
    loader.persistent_workers = False
    if loader.dataset.get('type') == 'RepeatDataset':
        loader.dataset.times = 1
    innermost_dataset(loader.dataset).ann_file = args.tune_ann
    cfg.val_dataloader.persistent_workers = False
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=args.epochs, val_interval=1)
    cfg.param_scheduler = [s for s in cfg.get('param_scheduler') or [] if not s.get('by_epoch', True)]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1, save_last=False)
    cfg.log_processor = dict(by_epoch=True)
    cfg.work_dir = osp.join(args.work_dir, f'trial_{number}')
    cfg.experiment_name = f'{osp.basename(args.work_dir)}_trial_{number}'
    return cfg


def open_study(url, name, attempts=5):
    """Create or join the study. Workers started together race to create the storage's
    tables; the losers retry once the winner has created them."""
    for attempt in range(attempts):
        try:
            storage = RDBStorage(url, engine_kwargs={'connect_args': {'timeout': 60}}
                                 if url.startswith('sqlite') else {})
            return optuna.create_study(
                study_name=name, direction='maximize', load_if_exists=True, storage=storage,
                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))
        except sqlalchemy.exc.SQLAlchemyError:
            if attempt == attempts - 1:
                raise
            time.sleep(1 + random.random())


def write_best(study, args):
    best = study.best_trial
    params = dict(best.params)
    text = ('# IoU thresholds and FPN gradient flow for stage 2, written by tools/tune.py:\n'
            f'# best of {len(study.trials)} trials of study "{study.study_name}" (trial {best.number}, '
            f'val {OBJECTIVE} {best.value:.4f}) on {args.tune_ann}.\n'
            f"rcnn_fg_iou_thr = {params['rcnn_fg_iou_thr']:.3f}  # RoI head: foreground if IoU >= this\n"
            f"rpn_pos_iou_thr = {params['rpn_pos_iou_thr']:.3f}\n"
            f"rpn_neg_iou_thr = {params['rpn_neg_iou_thr']:.3f}\n"
            f"fpn_lr_mult = {FPN_FLOW[params['fpn_flow']]}  # FPN gradient flow: {params['fpn_flow']}\n")
    if write_text(text, args.out):
        print(f'wrote {args.out}')
    optuna.visualization.matplotlib.plot_optimization_history(study).figure.savefig(
        osp.join(args.work_dir, 'history.png'), dpi=100, bbox_inches='tight')
    plt.close('all')
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if len(complete) > 1:
        optuna.visualization.matplotlib.plot_param_importances(study).figure.savefig(
            osp.join(args.work_dir, 'importances.png'), dpi=100, bbox_inches='tight')
        plt.close('all')


def main():
    args = parse_args()
    name = osp.splitext(osp.basename(args.config))[0]
    args.work_dir = args.work_dir or osp.join('work_dirs', f'tune_{name}')
    base = Config.fromfile(args.config)
    if args.cfg_options:
        base.merge_from_dict(args.cfg_options)
    if args.load_from:
        base.load_from = args.load_from
    if base.get('load_from') and not osp.isfile(base.load_from):
        sys.exit(f'error: starting weights not found: {base.load_from} (train stage 1 or pass --load-from)')
    prepare_runtime(base)
    os.makedirs(args.work_dir, exist_ok=True)
    storage = args.storage or f'sqlite:///{osp.abspath(osp.join(args.work_dir, "study.db"))}'
    study = open_study(storage, args.study_name or name)

    def objective(trial):
        runner = Runner.from_cfg(trial_config(base, suggest(trial), args, trial.number))
        hook = PruningHook(trial)
        runner.register_hook(hook)
        runner.train()
        return max(hook.values)

    study.optimize(objective, n_trials=args.trials, catch=(RuntimeError,),
                   callbacks=[MaxTrialsCallback(args.trials, states=None)])
    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.RUNNING for t in trials):
        print('other workers are still running trials; the last one to finish writes the result')
        return
    if not any(t.state == TrialState.COMPLETE for t in trials):
        sys.exit('error: no trial completed')
    write_best(study, args)
    print(f'best trial {study.best_trial.number}: {OBJECTIVE} {study.best_value:.4f} {study.best_trial.params}')


if __name__ == '__main__':
    main()
