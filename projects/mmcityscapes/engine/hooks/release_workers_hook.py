"""Stop a run's dataloader workers when it ends, instead of leaving them to the garbage collector."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import BaseLoop, Runner


@HOOKS.register_module()
class ReleaseWorkersHook(Hook):
    """Shut the worker processes of every loop the run built down at ``after_run`` (the end of
    ``train``, ``val`` and ``test``).

    A Runner is a reference cycle, so the garbage collector frees it, in no set order: a
    worker's index queue can be closed before the iterator's shutdown puts the stop signal in
    it, and PyTorch then waits 5 s for each worker before killing it (20 s for the four
    persistent workers of a mini config). The staged, cross-validation and search runners and the
    tests train or test several Runners in one process. A loop run again starts new workers.
    """

    priority = 'LOWEST'

    def after_run(self, runner: Runner) -> None:
        for loop in (runner._train_loop, runner._val_loop, runner._test_loop):
            if not isinstance(loop, BaseLoop):  # a config dict: the run did not build it
                continue
            infinite = getattr(loop, 'dataloader_iterator', None)  # IterBasedTrainLoop's
            for iterator in (loop.dataloader._iterator, getattr(infinite, '_iterator', None)):
                if hasattr(iterator, '_shutdown_workers'):  # a multi-process iterator
                    iterator._shutdown_workers()
            loop.dataloader._iterator = None
