"""FiniteTrainingHook and PortableAmpOptimWrapper on mmengine's toy runner: a non-finite loss stops
training before its checkpoint; steps the AMP loss scaler skips do not."""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from mmengine.testing import RunnerTestCase

import mmcityscapes.components  # noqa: F401
from mmcityscapes.engine.hooks.finite_training_hook import TrainingDiverged


@MODELS.register_module(force=True)
class ScaledLossModel(BaseModel):
    """One weight; the loss is ``scale * weight`` (finite for any finite scale), NaN from step ``nan_at``."""

    def __init__(self, scale=1.0, nan_at=None, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.scale, self.nan_at, self.steps = scale, nan_at, 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode != 'loss':
            return [self.weight] * len(inputs)
        self.steps += 1
        loss = self.scale * self.weight.sum()
        return dict(loss=loss * float('nan') if self.steps == self.nan_at else loss)


class TestFiniteTraining(RunnerTestCase):

    def config(self, **model):
        cfg = copy.deepcopy(self.iter_based_cfg)
        cfg.model = dict(type='ScaledLossModel', **model)
        cfg.train_cfg = dict(by_epoch=False, max_iters=4, val_interval=10)
        cfg.custom_hooks = [dict(type='FiniteTrainingHook')]
        cfg.default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False))
        return cfg

    def test_a_nan_loss_stops_training_before_its_checkpoint(self):
        cfg = self.config(nan_at=3)
        with pytest.raises(TrainingDiverged, match=r'^training stopped at iteration 3: the loss is not finite '
                                                   r'\(loss nan\); the last checkpoint, .*iter_2\.pth, is kept'):
            self.build_runner(cfg).train()
        assert sorted(osp.basename(p) for p in glob.glob(osp.join(cfg.work_dir, 'iter_*.pth'))) == \
            ['iter_1.pth', 'iter_2.pth']

    def test_steps_the_amp_scaler_skips_do_not_stop_training(self):
        """Every gradient overflows once scaled (1e35 x 65536 > float32's maximum): the scaler skips
        each step and halves its scale; the loss stays finite and training runs to its end."""
        cfg = self.config(scale=1e35)
        cfg.optim_wrapper = dict(type='PortableAmpOptimWrapper', optimizer=dict(type='SGD', lr=0.1))
        runner = self.build_runner(cfg)
        runner.train()
        assert runner.iter == 4 and torch.equal(runner.model.weight.detach(), torch.ones(1))  # no step taken
        assert runner.optim_wrapper.loss_scaler.get_scale() == 65536 / 2 ** 4
