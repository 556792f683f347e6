"""A run resumed with another config (``tools/train.py --resume --allow-changes``) trains with the
new config's optimizer settings and parameter schedules, not the checkpoint's."""
import copy
from typing import List, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.optim import ReduceOnPlateauParamScheduler
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop, Runner


@HOOKS.register_module()
class ApplyConfigChangesHook(Hook):
    """mmengine's resume restores the optimizer's settings (lr, weight decay, momentum) and the
    parameter schedulers' states from the checkpoint, so a changed value in the config would be
    claimed by the work dir's config dump and the next checkpoint but not used.

    This hook keeps what the optimizer and schedulers were built with from the current config
    (``before_run``) and, once the checkpoint is loaded (``before_train``), puts the optimizer's
    settings back and replays the schedulers from their start to the resumed iteration, as an
    uninterrupted run of the new config would have stepped them (a ``ReduceOnPlateau`` scheduler,
    which needs the validation history, keeps its resumed state). The optimizer's state (momentum
    buffers) stays the checkpoint's. One line in the log names the changed keys.

    Args:
        changes (list): ``(key, old value, new value)`` of the changed config keys, for the log.
    """

    priority = 'VERY_HIGH'

    def __init__(self, changes: Sequence[Tuple[str, object, object]]):
        self.changes = list(changes)

    @staticmethod
    def schedulers(runner: Runner) -> List:
        schedulers = runner.param_schedulers or []
        if isinstance(schedulers, dict):
            schedulers = [s for group in schedulers.values() for s in group]
        return list(schedulers)

    def before_run(self, runner: Runner) -> None:  # built from this config, nothing resumed yet
        self.settings = [{k: copy.deepcopy(v) for k, v in group.items() if k != 'params'}
                         for group in runner.optim_wrapper.param_groups]
        self.states = [copy.deepcopy(s.state_dict()) for s in self.schedulers(runner)]

    def before_train(self, runner: Runner) -> None:
        for group, settings in zip(runner.optim_wrapper.param_groups, self.settings):
            group.update(copy.deepcopy(settings))
        replayed = [s for s in self.schedulers(runner) if not isinstance(s, ReduceOnPlateauParamScheduler)]
        for scheduler, state in zip(self.schedulers(runner), self.states):
            if scheduler in replayed:
                scheduler.load_state_dict(copy.deepcopy(state))
        per_epoch = len(runner.train_dataloader) if isinstance(runner.train_loop, EpochBasedTrainLoop) else None
        for i in range(runner.iter):  # the order of ParamSchedulerHook: iteration steps, then epoch steps
            for scheduler in replayed:
                if not scheduler.by_epoch:
                    scheduler.step()
            if per_epoch and (i + 1) % per_epoch == 0:
                for scheduler in replayed:
                    if scheduler.by_epoch:
                        scheduler.step()
        shown = ', '.join(f'{key} {old!r} -> {new!r}' for key, old, new in self.changes)
        lrs = ', '.join(f'{group["lr"]:.6g}' for group in runner.optim_wrapper.param_groups)
        runner.logger.warning(f'ApplyConfigChangesHook: resumed at iteration {runner.iter} with {len(self.changes)} '
                              f'changed config values ({shown}); the optimizer settings and parameter schedules are '
                              f'this config\'s from here on (lr now {lrs})')
