"""Every registered component of the plugin, and the checkpoint allow-list.

Configs load it with ``custom_imports = dict(imports=['mmcityscapes.components'],
allow_failed_imports=False)``: importing it registers the metrics, hooks, models and runners
into the mmengine/mmdet/mmseg registries, and lets mmengine checkpoints load with torch's safe
``weights_only`` unpickler.
"""
from mmcityscapes.datasets.cityscapes_panoptic import CityscapesPanopticDataset, LoadCityscapesPanopticAnnotations
from mmcityscapes.deployment.onnx_models import ONNXDetector, ONNXSegmentor
from mmcityscapes.engine.hooks import (
    ApplyConfigChangesHook,
    CoarsePretrainHook,
    FiniteTrainingHook,
    LoadReportHook,
    OverlayHook,
    PreemptionHook,
    ProgressHook,
    ReleaseWorkersHook,
    ResumeValidationHook,
    TrainStatsHook,
    ValLossHook,
)
from mmcityscapes.engine.optimizers import PortableAmpOptimWrapper
from mmcityscapes.engine.runner import CrossValidationRunner, ResumableEpochBasedTrainLoop, StagedRunner
from mmcityscapes.evaluation.cityscapes_instance_metric import CityscapesInstanceMetric
from mmcityscapes.evaluation.cityscapes_panoptic_metric import CityscapesPanopticMetric
from mmcityscapes.evaluation.coco_metric import ClasswiseCocoMetric
from mmcityscapes.evaluation.segmentation_metric import SegmentationMetric
from mmcityscapes.models import (
    DeviceMaxIoUAssigner,
    DeviceRandomSampler,
    DeviceTargetFCNMaskHead,
    Float32RoIExtractor,
    Float32RPNHead,
    MaskFormerSemanticFusionHead,
    TorchvisionASPPHead,
    UNetHead,
)
from mmcityscapes.panoptic import PanopticFusion
from mmcityscapes.utils.checkpoint import allow_mmengine_checkpoints  # noqa: F401 (installs the allow-list)

__all__ = ['ApplyConfigChangesHook', 'CityscapesInstanceMetric', 'CityscapesPanopticDataset',
           'CityscapesPanopticMetric', 'ClasswiseCocoMetric', 'CoarsePretrainHook', 'CrossValidationRunner',
           'DeviceMaxIoUAssigner', 'DeviceRandomSampler', 'DeviceTargetFCNMaskHead', 'FiniteTrainingHook',
           'Float32RPNHead', 'Float32RoIExtractor', 'LoadCityscapesPanopticAnnotations', 'LoadReportHook',
           'MaskFormerSemanticFusionHead', 'ONNXDetector', 'ONNXSegmentor', 'OverlayHook', 'PanopticFusion',
           'PortableAmpOptimWrapper', 'PreemptionHook', 'ProgressHook', 'ReleaseWorkersHook',
           'ResumableEpochBasedTrainLoop', 'ResumeValidationHook', 'SegmentationMetric', 'StagedRunner',
           'TorchvisionASPPHead', 'TrainStatsHook', 'UNetHead', 'ValLossHook']
