"""Optuna search of stage 2's IoU thresholds and FPN gradient flow (stage 2 of the staged Mask R-CNN recipe).

Search space: RoI-head foreground IoU threshold, RPN positive and negative IoU thresholds and
FPN gradient flow (trainable / reduced lr / frozen). Each trial trains the stage-2 config for a
few epochs on the tuning subset, validates after every epoch and maximises val mask mAP;
Optuna's median pruner stops trials that fall behind.

The study lives in an RDB storage (SQLite in the work dir by default), with heartbeats: a trial
whose worker died (kill -9, a lost node) is retried with the same parameters (twice at most) once
its heartbeat is stale: the launch's rank 0 queues the retry, then fails the dead trial
(``retry_stale_trials``), so each dead trial is retried exactly once. The search runs until the
study holds ``trials`` finished (complete or pruned) trials, so a re-run continues an interrupted
study and a finished study is a no-op;
several workers can share one study through a common storage URL (workers that ask for the last
trial at the same moment may each run it, so a shared study can end one trial per extra worker
above ``trials``). Under a distributed launch each process is such a worker (``parallel``, the
default): trials train side by side, one per process, each on its own and with the config's batch;
the processes meet again when the study is done. With ``parallel=False`` every trial trains on
all processes: rank 0 drives the study and broadcasts each trial's parameters and pruning decisions.
"""
import copy
import os
import os.path as osp
import random
import time
from contextlib import nullcontext
from typing import List, Optional, Tuple

import matplotlib
from mmengine.config import Config

matplotlib.use('Agg')
import optuna  # noqa: E402
import sqlalchemy  # noqa: E402
from mmengine.dist import is_main_process  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from optuna.exceptions import UpdateFinishedTrialError  # noqa: E402
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from mmcityscapes.common.figures import save_figure  # noqa: E402
from mmcityscapes.datasets.layout import innermost_dataset  # noqa: E402
from mmcityscapes.engine.dist import broadcast, standalone_processes  # noqa: E402
from mmcityscapes.engine.hooks.finite_training_hook import TrainingDiverged  # noqa: E402
from mmcityscapes.engine.hooks.pruning_hook import OBJECTIVE, PruningHook  # noqa: E402
from mmcityscapes.engine.runner.runtime import prepare_runtime  # noqa: E402
from mmcityscapes.tuning.values import FPN_FLOW, apply_tuned  # noqa: E402

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def suggest(trial: optuna.Trial) -> dict:
    pos = trial.suggest_float('rpn_pos_iou_thr', 0.5, 0.8)
    return dict(
        rcnn_fg_iou_thr=trial.suggest_float('rcnn_fg_iou_thr', 0.4, 0.7),
        rpn_pos_iou_thr=pos,
        rpn_neg_iou_thr=trial.suggest_float('rpn_neg_iou_thr', 0.2, min(0.4, pos - 0.1)),
        fpn_lr_mult=FPN_FLOW[trial.suggest_categorical('fpn_flow', list(FPN_FLOW))])


def trial_config(base: Config, params: dict, work_dir: str, epochs: int, ann_file: str) -> Config:
    """``base`` with a trial's values, trained ``epochs`` epochs on ``ann_file``, validated
    every epoch, without checkpoints."""
    cfg = apply_tuned(copy.deepcopy(base), params)
    loader = cfg.train_dataloader
    loader.sampler = dict(type='DefaultSampler', shuffle=True)
    loader.persistent_workers = False
    if loader.dataset.get('type') == 'RepeatDataset':
        loader.dataset.times = 1
    innermost_dataset(loader.dataset).ann_file = ann_file
    cfg.val_dataloader.persistent_workers = False
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs, val_interval=1)
    cfg.param_scheduler = [s for s in cfg.get('param_scheduler') or [] if not s.get('by_epoch', True)]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1, save_last=False)
    cfg.log_processor = dict(by_epoch=True)
    cfg.work_dir = work_dir
    cfg.experiment_name = osp.basename(work_dir)
    return cfg


class PassiveRDBStorage(RDBStorage):
    """An ``RDBStorage`` that runs trials and keeps their heartbeats but never finds a trial stale
    (the storage hook Optuna's ``fail_stale_trials`` asks, also inside ``Study.optimize``): dead
    trials are retried by ``retry_stale_trials`` alone, on the launch's rank 0."""

    def _get_stale_trial_ids(self, study_id: int) -> List[int]:
        return []


def retry_stale_trials(study: optuna.Study, max_retry: int = 2) -> None:
    """Queue a copy of each trial whose worker died (its heartbeat is stale) with the same
    parameters, then fail it: the copy is queued before the failed trial stops counting as
    running, so another worker asking for a trial in between finds the copy rather than making a
    new trial. Called by the launch's rank 0 alone, so that each dead trial is retried once (SQLite
    has no row locks: two workers failing one trial at once would both retry it)."""
    retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    storage = getattr(study._storage, '_backend', study._storage)  # the RDBStorage inside Optuna's cache
    for trial_id in RDBStorage._get_stale_trial_ids(storage, study._study_id):
        trial = study._storage.get_trial(trial_id)
        if trial.state != TrialState.RUNNING:
            continue
        retry(study, trial)
        try:
            study._storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            pass


def open_study(url: str, name: str, heartbeat: int, attempts: int = 5) -> optuna.Study:
    """Create or join the study. Workers started together race to create the storage's tables;
    the losers retry once the winner has created them."""
    for attempt in range(attempts):
        try:
            storage = PassiveRDBStorage(
                url, engine_kwargs={'connect_args': {'timeout': 60}} if url.startswith('sqlite') else {},
                heartbeat_interval=heartbeat)
            return optuna.create_study(
                study_name=name, direction='maximize', load_if_exists=True, storage=storage,
                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))
        except sqlalchemy.exc.SQLAlchemyError:
            if attempt == attempts - 1:
                raise
            time.sleep(1 + random.random())


def next_step(study: optuna.Study, trials: int, retries_stale: bool) -> str:
    """'done' (``trials`` finished), 'wait' (the rest are running elsewhere) or 'trial'. The worker
    that ``retries_stale`` first queues a retry of each dead worker's trial."""
    if retries_stale:
        retry_stale_trials(study)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    finished = sum(s in FINISHED for s in states)
    if finished >= trials:
        return 'done'
    return 'wait' if finished + states.count(TrialState.RUNNING) >= trials else 'trial'


def search(base: Config, work_dir: str, trials: int, epochs: int = 3,
           ann_file: str = 'annotations/instancesonly_filtered_gtFine_train_tune.json',
           storage: Optional[str] = None, study_name: str = 'stage2', heartbeat: int = 30,
           parallel: bool = True) -> Tuple[dict, str]:
    """Run the study until ``trials`` trials have finished; return the best values
    (``apply_tuned``'s keys) and a note saying where they come from. Every process calls it.

    Args:
        base (Config): the stage-2 config, ``load_from`` the stage-1 weights.
        work_dir (str): trials train in ``<work_dir>/trial_<n>``; the SQLite study and its plots
            (history.png, importances.png) are kept here.
        ann_file (str): training annotations of the tuning subset, relative to the data root.
        storage (str): an Optuna RDB URL shared by several workers; default SQLite in work_dir.
        heartbeat (int): seconds between heartbeats; a trial silent for twice as long is stale.
        parallel (bool): under a distributed launch, one trial per process (``standalone_processes``)
            instead of every trial on all processes.
    """
    os.makedirs(work_dir, exist_ok=True)
    base = copy.deepcopy(base)
    if parallel:
        base.launcher = 'none'
    prepare_runtime(base)
    url = storage or f'sqlite:///{osp.abspath(osp.join(work_dir, "study.db"))}'
    with standalone_processes() if parallel else nullcontext() as launch:
        rank = launch[0] if parallel else 0  # the process's rank in the launch
        study = open_study(url, study_name, heartbeat) if is_main_process() else None
        run_trials(study, base, work_dir, trials, epochs, ann_file, heartbeat, retries_stale=rank == 0)
    result = None
    if is_main_process():
        result = best_values(study, ann_file)
        plot(study, work_dir)
    return broadcast(result)


def run_trials(study: Optional[optuna.Study], base: Config, work_dir: str, trials: int, epochs: int, ann_file: str,
               heartbeat: int, retries_stale: bool = True) -> None:
    """Train trials until the study holds ``trials`` finished ones (``study`` on rank 0, None
    elsewhere); the worker that ``retries_stale`` queues the retries of dead workers' trials."""

    def objective(trial: Optional[optuna.Trial]) -> float:
        params, number = broadcast((suggest(trial), trial.number) if trial else None)
        cfg = trial_config(base, params, osp.join(work_dir, f'trial_{number}'), epochs, ann_file)
        if trial:
            trial.set_user_attr('work_dir', cfg.work_dir)
        hook = PruningHook(trial)
        runner = Runner.from_cfg(cfg)
        runner.register_hook(hook)
        try:
            runner.train()
        except TrainingDiverged as e:  # values that make training diverge lose, as pruned trials do
            raise optuna.TrialPruned(str(e)) from None
        return max(hook.values)

    while (step := broadcast(next_step(study, trials, retries_stale) if study else None)) != 'done':
        if step == 'wait':
            time.sleep(heartbeat)
        elif study:
            study.optimize(objective, n_trials=1)
        else:
            try:
                objective(None)
            except optuna.TrialPruned:
                pass


def best_values(study: optuna.Study, ann_file: str) -> Tuple[dict, str]:
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not complete:
        raise RuntimeError(f'Optuna study "{study.study_name}": no trial completed (all pruned or failed)')
    best = max(complete, key=lambda t: t.value)
    values = {key: round(best.params[key], 3) for key in ('rcnn_fg_iou_thr', 'rpn_pos_iou_thr', 'rpn_neg_iou_thr')}
    values['fpn_lr_mult'] = FPN_FLOW[best.params['fpn_flow']]
    note = (f'best of {len(complete)} complete trials of Optuna study "{study.study_name}" '
            f'(trial {best.number}, val {OBJECTIVE} {best.value:.4f}, FPN {best.params["fpn_flow"]}), '
            f'trained on {ann_file}')
    return values, note


def plot(study: optuna.Study, work_dir: str) -> None:
    """Optimisation history and, once the objective varies, parameter importances, as PNGs."""
    save_figure(optuna.visualization.matplotlib.plot_optimization_history(study).figure,
                osp.join(work_dir, 'history.png'), bbox_inches='tight')
    values = {t.value for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE}
    if len(values) > 1:
        save_figure(optuna.visualization.matplotlib.plot_param_importances(study).figure,
                    osp.join(work_dir, 'importances.png'), bbox_inches='tight')
