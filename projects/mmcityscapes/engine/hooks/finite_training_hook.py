"""Stop training at the first non-finite loss, and never save a checkpoint of non-finite weights."""
import math
import os.path as osp
from typing import Optional

import torch
from mmdet.engine.hooks import CheckInvalidLossHook
from mmengine.dist import all_reduce, get_world_size
from mmengine.registry import HOOKS
from mmengine.runner import Runner

from mmcityscapes.common.errors import UserError
from mmcityscapes.utils.checkpoint import latest_checkpoint, non_finite_tensors


class TrainingDiverged(UserError):
    """The loss or the weights became NaN or infinite (the search prunes such a trial)."""


@HOOKS.register_module()
class FiniteTrainingHook(CheckInvalidLossHook):
    """mmdet's ``CheckInvalidLossHook`` made to stop the run the moment training diverges, for
    every model family, instead of asserting every 50 iterations.

    After every ``interval`` iterations it looks at the loss and each of its terms; if one is NaN
    or infinite, training stops with one line (the iteration, the terms, the last checkpoint,
    which is kept) before this iteration's checkpoint is saved, and the tool exits with status 2.
    The processes of a distributed run agree first (one all-reduce of a flag), so all stop at the
    same iteration. Whatever saves a checkpoint (``CheckpointHook``, ``PreemptionHook``), a state
    with a non-finite tensor is refused before it is written. Under AMP the loss scaler skips the
    steps whose gradients overflow and lowers its scale; the loss itself stays finite, so those
    steps do not stop training. ``prepare_runtime`` adds the hook to every training.

    Args:
        interval (int): iterations between checks. Defaults to 1.
    """

    priority = 'VERY_HIGH'  # before CheckpointHook and PreemptionHook save the iteration

    def __init__(self, interval: int = 1):
        super().__init__(interval)

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not self.every_n_train_iters(runner, self.interval) or outputs is None:
            return
        terms = {name: value.item() for name, value in outputs.items()
                 if isinstance(value, torch.Tensor) and value.numel() == 1}
        bad = torch.tensor([not all(math.isfinite(value) for value in terms.values())], dtype=torch.int64)
        if get_world_size() > 1:
            all_reduce(bad, op='max')
        if not bad.item():
            return
        shown = ', '.join(f'{name} {value:.4g}' for name, value in terms.items())
        latest = latest_checkpoint(runner.work_dir)
        kept = f'the last checkpoint, {latest}, is kept' if latest and osp.isfile(latest) else 'no checkpoint was saved'
        raise TrainingDiverged(f'training stopped at iteration {runner.iter + 1}: the loss is not finite ({shown}); '
                               f'{kept}. Lower the learning rate, or check the data and the loss weights')

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        bad, total = non_finite_tensors(checkpoint['state_dict'])
        if bad:
            raise TrainingDiverged(f'not saving a checkpoint at iteration {runner.iter + 1}: {len(bad)} of its {total} '
                                   f'tensors hold NaN or infinite values (e.g. {bad[0]}); the last checkpoint, '
                                   f'{latest_checkpoint(runner.work_dir)}, is kept')
