"""Validation loss for mmseg models, logged and usable by ``save_best``."""
import inspect
from typing import Dict, Optional, Sequence

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import Runner

from mmcityscapes.utils.model import unwrap_model


def takes_ignore_index(loss: torch.nn.Module) -> bool:
    return 'ignore_index' in inspect.signature(loss.forward).parameters


@HOOKS.register_module()
class ValLossHook(Hook):
    """Compute the decode head's loss on the validation set, from the logits mmseg's predict
    step already returns (no second forward pass).

    The mean is logged as ``val/loss`` and added to the epoch's metrics as ``loss``, so
    ``default_hooks.checkpoint.save_best='loss', rule='less'`` keeps the checkpoint with the
    lowest validation loss (the criterion of the U-Net CV recipe, configs/README.md).
    """

    priority = 'NORMAL'  # before LoggerHook and CheckpointHook read the metrics

    def before_val_epoch(self, runner: Runner) -> None:
        self._total, self._count = 0.0, 0

    def after_val_iter(self, runner: Runner, batch_idx: int, data_batch: Optional[dict] = None,
                       outputs: Optional[Sequence] = None) -> None:
        model = unwrap_model(runner.model)
        head = model.decode_head
        modules = head.loss_decode if isinstance(head.loss_decode, torch.nn.ModuleList) else [head.loss_decode]
        # OhemCrossEntropy takes no ignore_index: it has its own ignore label
        losses = [(fn, dict(ignore_index=head.ignore_index) if takes_ignore_index(fn) else {}) for fn in modules]
        for sample in outputs:
            logits = sample.seg_logits.data[None].float()
            label = sample.gt_sem_seg.data.long()
            loss = sum(fn(logits, label, **kwargs) for fn, kwargs in losses)
            self._total += float(loss)
            self._count += 1

    def after_val_epoch(self, runner: Runner, metrics: Optional[Dict[str, float]] = None) -> None:
        totals = torch.tensor([self._total, self._count], dtype=torch.float64)
        all_reduce(totals)  # every rank validated part of the set
        if not totals[1]:
            return
        value = float(totals[0] / totals[1])
        runner.message_hub.update_scalar('val/loss', value)
        if metrics is not None:
            metrics['loss'] = value
