"""mmdet's COCO metric with per-class AP for every metric."""
from mmdet.evaluation import CocoMetric
from mmdet.registry import METRICS


@METRICS.register_module()
class ClasswiseCocoMetric(CocoMetric):
    """``CocoMetric`` that also reports per-class AP (0.5:0.95) as ``<metric>_AP.<class>``
    (``bbox_AP.car``, ``segm_AP.car``).

    With ``classwise=True`` mmdet stores each class's AP as ``<class>_precision`` for every
    metric in turn, so segm overwrites bbox; here each metric is scored on its own and its
    per-class keys are renamed.
    """

    def __init__(self, **kwargs):
        super().__init__(classwise=True, **kwargs)

    def compute_metrics(self, results):
        metrics, merged = self.metrics, {}
        classes = set(self.dataset_meta['classes'])
        try:
            for metric in metrics:
                self.metrics = [metric]
                for key, value in super().compute_metrics(results).items():
                    name = key[:-len('_precision')]
                    merged[f'{metric}_AP.{name}' if name in classes else key] = value
        finally:
            self.metrics = metrics
        return merged
