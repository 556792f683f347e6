"""Optuna's pruning inside an mmengine run (a trial of the stage-2 search)."""
from typing import Dict, Optional

import optuna
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmcityscapes.engine.dist import broadcast

OBJECTIVE = 'coco/segm_mAP'  # what the search maximises


class PruningHook(Hook):
    """Report the objective after each validation; stop the trial when Optuna prunes it
    (``trial`` on rank 0, None elsewhere: the decision is broadcast)."""

    priority = 'LOW'

    def __init__(self, trial: Optional[optuna.Trial]) -> None:
        self.trial, self.values = trial, []

    def after_val_epoch(self, runner: Runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self.values.append(float(metrics[OBJECTIVE]))
        prune = False
        if self.trial is not None:
            self.trial.report(self.values[-1], step=len(self.values))
            prune = self.trial.should_prune()
        if broadcast(prune):
            raise optuna.TrialPruned(f'{OBJECTIVE} {self.values[-1]:.4f} after {len(self.values)} epochs')
