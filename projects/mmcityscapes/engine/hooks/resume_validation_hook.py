"""Validate, on resume, the epoch (or iteration) whose validation a kill interrupted."""
from typing import Dict, Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop, Runner


@HOOKS.register_module()
class ResumeValidationHook(Hook):
    """Record each validated training step (epoch or iteration) in the message hub; on resume,
    first validate the step the run resumes at if it was due for validation and its record says
    it was not validated.

    mmengine saves a step's checkpoint before validating it, so a run killed during validation
    resumes after that step and never scores it: it may have been the best, and for the last
    step the run would end without validating its final weights at all. The checkpoint holds
    the record only when the validation finished and CheckpointHook saved it again (a new best);
    otherwise the step is validated once more, which changes nothing.
    """

    priority = 'LOW'

    @staticmethod
    def step(runner: Runner):
        """(current step, last step) of the train loop, in its own unit."""
        loop = runner.train_loop
        if isinstance(loop, EpochBasedTrainLoop):
            return runner.epoch, loop.max_epochs
        return runner.iter, loop.max_iters

    def after_val_epoch(self, runner: Runner, metrics: Optional[Dict[str, float]] = None) -> None:
        runner.message_hub.update_info('validated_step', self.step(runner)[0])

    def before_train(self, runner: Runner) -> None:
        loop = runner.train_loop
        step, last = self.step(runner)
        self.pending = None
        if runner.iter == 0 or runner.val_loop is None:  # a fresh run, or none validated
            return
        due = step >= loop.val_begin and (step % loop.val_interval == 0 or step == last)
        if due and runner.message_hub.get_info('validated_step', 0) < step:
            self.pending = step

    # Validated once every hook has run its before_train (CheckpointHook prepares its files
    # there): before the first epoch, or at the end when no step was left to train.
    def before_train_epoch(self, runner: Runner) -> None:
        self.validate_pending(runner)

    def after_train(self, runner: Runner) -> None:
        self.validate_pending(runner)

    def validate_pending(self, runner: Runner) -> None:
        if self.pending is not None:
            runner.logger.info(f'ResumeValidationHook: validating step {self.pending}, whose validation was '
                               'interrupted')
            self.pending = None
            runner.val_loop.run()
