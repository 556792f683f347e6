"""A few progress lines on the terminal, whatever the logger prints (``tools/demo.py``)."""
import sys
import time
from typing import Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import Runner


@HOOKS.register_module()
class ProgressHook(Hook):
    """Print ``<name>: iteration i/n (p %), loss x, <elapsed>`` to the process's own terminal
    (``sys.__stdout__``, also when ``sys.stdout`` is redirected into a log) after every
    ``1 / steps`` of training, and one line when testing starts.

    Args:
        name (str): what the lines name (a run's config).
        steps (int): progress lines per training run. Defaults to 10.
    """

    priority = 'LOWEST'

    def __init__(self, name: str, steps: int = 10) -> None:
        self.name, self.steps = name, steps

    def before_train(self, runner: Runner) -> None:
        self.start = time.perf_counter()
        self.report(f'training {runner.max_iters} iterations (full log: {runner.log_dir})')

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        done, total = runner.iter + 1, runner.max_iters
        if done * self.steps // total != (done - 1) * self.steps // total or done == total:
            loss = f', loss {float(outputs["loss"]):.3f}' if outputs and 'loss' in outputs else ''
            minutes = (time.perf_counter() - self.start) / 60
            self.report(f'iteration {done}/{total} ({100 * done // total} %){loss}, {minutes:.1f} min')

    def before_test(self, runner: Runner) -> None:
        self.report(f'testing on {len(runner.test_dataloader.dataset)} images')

    def report(self, text: str) -> None:
        print(f'{self.name}: {text}', file=sys.__stdout__, flush=True)
