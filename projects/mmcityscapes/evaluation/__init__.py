"""mmengine metrics: ``SegmentationMetric`` (mmseg), ``ClasswiseCocoMetric`` and
``CityscapesInstanceMetric`` (mmdet), built on the official scoring of ``mmcityscapes.cityscapes``."""
