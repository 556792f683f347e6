"""Load a coarse-label pretrained backbone (stage 0) into a detector before training."""
import os.path as osp

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner.checkpoint import _load_checkpoint

from ..cityscapes.errors import UserError
from ..utils.checkpoint import resolve_checkpoint


@HOOKS.register_module()
class CoarsePretrainHook(Hook):
    """Copy the backbone of a stage-0 segmentation checkpoint into the model's backbone.

    Stage 0 trains a ResNet-50 whose weights have the names and shapes of mmdet's Mask R-CNN
    backbone (dilation changes no shapes). Before the first iteration, this hook maps
    ``<src_prefix>*`` tensors of the checkpoint onto ``<dst_prefix>*`` of the model, checks every
    shape and logs how many tensors it loaded and skipped. It stops with one message if the
    checkpoint is missing or does not fit: a shape differs, or fewer than ``min_fraction`` of the
    backbone tensors are found. When the runner resumed or loaded ``load_from``, those weights
    win and the hook does nothing.

    Args:
        checkpoint (str): the stage-0 checkpoint, or stage 0's work dir (its best checkpoint).
        src_prefix (str): prefix of the backbone in the checkpoint. Defaults to 'backbone.'.
        dst_prefix (str): prefix of the backbone in the model. Defaults to 'backbone.'.
        min_fraction (float): share of backbone tensors that must be loaded. Defaults to 0.99.
    """

    priority = 'VERY_HIGH'

    def __init__(self, checkpoint, src_prefix='backbone.', dst_prefix='backbone.', min_fraction=0.99):
        self.checkpoint = checkpoint
        self.src_prefix, self.dst_prefix = src_prefix, dst_prefix
        self.min_fraction = min_fraction

    def before_train(self, runner):
        if runner.iter > 0 or runner.cfg.get('load_from'):
            runner.logger.info('CoarsePretrainHook: weights come from resume/load_from; not loading '
                               f'{self.checkpoint}')
            return
        checkpoint = resolve_checkpoint(self.checkpoint, getattr(runner.cfg, 'filename', None))
        if not osp.isfile(checkpoint):
            raise UserError(f'CoarsePretrainHook: stage-0 checkpoint not found: {checkpoint}')
        state = _load_checkpoint(checkpoint, map_location='cpu')
        state = state.get('state_dict', state)
        source = {k[len(self.src_prefix):]: v for k, v in state.items() if k.startswith(self.src_prefix)}
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        backbone = model.get_submodule(self.dst_prefix.rstrip('.'))
        target = backbone.state_dict()
        fitting = {k: source[k] for k, v in target.items() if k in source and source[k].shape == v.shape}
        wrong_shape = [k for k, v in target.items() if k in source and source[k].shape != v.shape]
        if wrong_shape or len(fitting) < self.min_fraction * len(target):
            example = (f'; e.g. {wrong_shape[0]}: {tuple(source[wrong_shape[0]].shape)} in the checkpoint, '
                       f'{tuple(target[wrong_shape[0]].shape)} in the model') if wrong_shape else ''
            raise RuntimeError(
                f'CoarsePretrainHook: {checkpoint} does not fit {type(backbone).__name__}: '
                f'{len(fitting)}/{len(target)} tensors match, {len(wrong_shape)} differ in shape{example}')
        backbone.load_state_dict(fitting, strict=False)
        unused = len(source) - len(fitting)
        runner.logger.info(
            f'CoarsePretrainHook: loaded {len(fitting)}/{len(target)} backbone tensors from '
            f'{checkpoint}; skipped {len(target) - len(fitting)} model tensors without a match '
            f'and {unused} checkpoint tensors not in the backbone')
