from .cityscapes_instance_metric import CityscapesInstanceMetric
from .coco_metric import ClasswiseCocoMetric
from .segmentation_metric import SegmentationMetric

__all__ = ['CityscapesInstanceMetric', 'ClasswiseCocoMetric', 'SegmentationMetric']
