"""ResumeValidationHook: a validation interrupted by a kill runs again on resume."""
import copy
import os

from mmengine.hooks import Hook
from mmengine.testing import RunnerTestCase

import mmcityscapes.components  # noqa: F401


class CountValidations(Hook):
    def __init__(self):
        self.epochs = []

    def after_val_epoch(self, runner, metrics=None):
        self.epochs.append(runner.epoch)


class TestResumeValidationHook(RunnerTestCase):

    def validations_on_resume(self, resumed_checkpoint=None, **checkpoint):
        """Train one epoch (its checkpoint is saved before its validation, as when a kill hits the
        validation), then resume with nothing left to train: which epochs are validated."""
        cfg = copy.deepcopy(self.epoch_based_cfg)
        cfg.train_cfg.max_epochs = 1
        cfg.custom_hooks = [dict(type='ResumeValidationHook')]
        cfg.default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, **checkpoint))
        self.build_runner(copy.deepcopy(cfg)).train()
        cfg.resume = True
        if resumed_checkpoint:
            cfg.default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, **resumed_checkpoint))
        runner = self.build_runner(cfg)
        counter = CountValidations()
        runner.register_hook(counter)
        runner.train()
        return counter.epochs

    def test_unrecorded_validation_runs_again(self):
        assert self.validations_on_resume() == [1]

    def test_validation_recorded_by_a_new_best_is_not_repeated(self):
        # a new best makes CheckpointHook save the epoch's checkpoint again, with the record
        assert self.validations_on_resume(save_best='acc', rule='greater') == []

    def test_the_validation_keeps_a_best_checkpoint(self):
        # the resumed run keeps the best checkpoint: the validation runs after CheckpointHook is ready
        assert self.validations_on_resume(resumed_checkpoint=dict(save_best='acc', rule='greater')) == [1]
        assert os.path.isfile(os.path.join(self.temp_dir.name, 'best_acc_epoch_1.pth'))
