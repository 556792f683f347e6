"""mmcityscapes plugin: the pieces mmdet/mmseg lack for Cityscapes.

Configs load it with ``custom_imports = dict(imports=['projects.mmcityscapes'])``; importing
it registers the components below and lets mmengine checkpoints load with torch's safe
unpickler.
"""
from .evaluation import ClasswiseCocoMetric, CityscapesInstanceMetric, SegmentationMetric
from .hooks import CoarsePretrainHook, ResumeValidationHook, TrainStatsHook, ValLossHook
from .models import (DeviceMaxIoUAssigner, DeviceRandomSampler, DeviceTargetFCNMaskHead, Float32RoIExtractor,
                     TorchvisionASPPHead, UNetHead)
from .runners import CrossValidationRunner, StagedRunner
from .utils.checkpoint import allow_mmengine_checkpoints
from .visualization import OverlayHook

allow_mmengine_checkpoints()

__all__ = ['ClasswiseCocoMetric', 'CityscapesInstanceMetric', 'CoarsePretrainHook', 'CrossValidationRunner',
           'DeviceMaxIoUAssigner', 'DeviceRandomSampler', 'DeviceTargetFCNMaskHead', 'Float32RoIExtractor',
           'OverlayHook', 'ResumeValidationHook', 'SegmentationMetric', 'StagedRunner', 'TorchvisionASPPHead',
           'TrainStatsHook', 'UNetHead',
           'ValLossHook']
