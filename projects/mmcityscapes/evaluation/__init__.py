from .cityscapes_instance_metric import CityscapesInstanceMetric
from .segmentation_metric import SegmentationMetric

__all__ = ['CityscapesInstanceMetric', 'SegmentationMetric']
