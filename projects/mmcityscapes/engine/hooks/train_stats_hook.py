"""Training time, throughput and peak memory of a run, kept across resumes."""
import time
from typing import Dict, Optional

from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import Runner

from mmcityscapes.utils.memory import PeakMemory


@HOOKS.register_module()
class TrainStatsHook(Hook):
    """Record a run's training wall time (iterations and data loading, not validation), images
    trained (all processes), images/s and peak memory of this process.

    The record lives in the message hub's runtime info as ``train_stats``, so checkpoints carry
    it and a resumed run adds to it. Peak memory is that of the process's device: CUDA memory
    allocated by tensors, or on CPU the peak resident set (without dataloader workers).
    """

    priority = 'LOW'

    def before_train(self, runner: Runner) -> None:
        self.stats = dict(runner.message_hub.get_info('train_stats') or
                          dict(time_s=0.0, iters=0, images=0, images_per_s=0.0, peak_memory_mb=0.0))
        self.memory = PeakMemory().reset()

    def before_train_epoch(self, runner: Runner) -> None:
        self._start = time.perf_counter()

    def after_val_epoch(self, runner: Runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self._start = time.perf_counter()  # validation inside an iteration-based loop is not training

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        now = time.perf_counter()
        stats = self.stats
        stats['time_s'] += now - self._start
        stats['iters'] += 1
        stats['images'] += len(data_batch['inputs']) * get_world_size()
        stats['images_per_s'] = stats['images'] / stats['time_s']
        stats['peak_memory_mb'] = max(stats['peak_memory_mb'], self.memory.peak() / 2 ** 20)
        runner.message_hub.update_info('train_stats', dict(stats))
        self._start = now
