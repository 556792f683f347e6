"""mmcityscapes plugin: the pieces mmdet/mmseg lack for Cityscapes.

Configs load it with ``custom_imports = dict(imports=['projects.mmcityscapes'])``; importing
it registers the components below and lets mmengine checkpoints load with torch's safe
unpickler.
"""
from .evaluation import CityscapesInstanceMetric, SegmentationMetric
from .hooks import CoarsePretrainHook, ValLossHook
from .models import UNetHead
from .runners import CrossValidationRunner
from .utils.checkpoint import allow_mmengine_checkpoints

allow_mmengine_checkpoints()

__all__ = ['CityscapesInstanceMetric', 'CoarsePretrainHook', 'CrossValidationRunner', 'SegmentationMetric', 'UNetHead', 'ValLossHook']
