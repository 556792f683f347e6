"""ReleaseWorkersHook on mmengine's toy runner: the persistent dataloader workers of a run are
gone when train/val/test return, not when the garbage collector frees the Runner."""
import copy
import multiprocessing

from mmengine.testing import RunnerTestCase

import mmcityscapes.components  # noqa: F401
from mmcityscapes.engine.hooks import ReleaseWorkersHook


class TestReleaseWorkers(RunnerTestCase):

    def config(self, hooks):
        cfg = copy.deepcopy(self.iter_based_cfg)
        cfg.train_cfg = dict(by_epoch=False, max_iters=3, val_interval=3)
        for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
            loader.update(num_workers=2, persistent_workers=True)
        cfg.custom_hooks = hooks
        return cfg

    def test_no_worker_outlives_its_run(self):
        runner = self.build_runner(self.config([dict(type='ReleaseWorkersHook')]))
        runner.train()
        assert multiprocessing.active_children() == []
        for run in (runner.val, runner.test):  # a loop run again starts new workers
            assert run()
            assert multiprocessing.active_children() == []

    def test_without_it_the_workers_outlive_the_run(self):
        runner = self.build_runner(self.config([]))
        runner.train()
        assert len(multiprocessing.active_children()) == 4  # train and val, 2 each
        ReleaseWorkersHook().after_run(runner)
        assert multiprocessing.active_children() == []
