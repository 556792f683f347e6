"""Load a coarse-label pretrained backbone (stage 0) into a detector before training."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import Runner

from mmcityscapes.utils.checkpoint import Checkpoint, resolve_checkpoint
from mmcityscapes.utils.model import unwrap_model


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

    def __init__(self, checkpoint: str, src_prefix: str = 'backbone.', dst_prefix: str = 'backbone.',
                 min_fraction: float = 0.99) -> None:
        self.checkpoint = checkpoint
        self.src_prefix, self.dst_prefix = src_prefix, dst_prefix
        self.min_fraction = min_fraction

    def before_train(self, runner: Runner) -> None:
        if runner.iter > 0 or runner.cfg.get('load_from'):
            runner.logger.info('CoarsePretrainHook: weights come from resume/load_from; not loading '
                               f'{self.checkpoint}')
            return
        checkpoint = Checkpoint.read(resolve_checkpoint(self.checkpoint, getattr(runner.cfg, 'filename', None)))
        backbone = unwrap_model(runner.model).get_submodule(self.dst_prefix.rstrip('.'))
        loaded = checkpoint.load_into(backbone, self.src_prefix, self.min_fraction,
                                      what=f'the {type(backbone).__name__} at {self.dst_prefix}')
        total = len(backbone.state_dict())
        unused = sum(key.startswith(self.src_prefix) for key in checkpoint.state) - loaded
        runner.logger.info(
            f'CoarsePretrainHook: loaded {loaded}/{total} backbone tensors from {checkpoint.path}; skipped '
            f'{total - loaded} model tensors without a match and {unused} checkpoint tensors not in the backbone')
