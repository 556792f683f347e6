"""An epoch-based train loop that resumes in the middle of an epoch."""
import itertools

from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop``, except that a run resumed from a checkpoint saved
    within an epoch (``PreemptionHook``) trains only that epoch's remaining iterations. mmengine
    would train the whole epoch again: more iterations than the schedule, and another lr.

    The batches already trained are loaded and dropped, as mmengine's ``IterBasedTrainLoop``
    does on resume, so the data order and the workers' random streams stay those of an
    uninterrupted run.
    """

    def run_epoch(self) -> None:
        done = self._iter - self._epoch * len(self.dataloader)
        if done <= 0:
            return super().run_epoch()
        self.runner.logger.info(f'resuming epoch {self._epoch + 1} after its iteration {done}: '
                                f'skipping {done} batches already trained')
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        if done < len(self.dataloader):
            batches = itertools.islice(enumerate(self.dataloader), done, None)
            for idx, data_batch in batches:
                self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
