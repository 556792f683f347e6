"""mmdet's COCO metric with per-class AP for every metric, and every key even with no prediction."""
from typing import Dict

from mmdet.evaluation import CocoMetric
from mmdet.registry import METRICS
from mmengine.logging import MMLogger

SUMMARY_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')  # CocoMetric's default metric_items


@METRICS.register_module()
class ClasswiseCocoMetric(CocoMetric):
    """``CocoMetric`` that also reports per-class AP (0.5:0.95) as ``<metric>_AP.<class>``
    (``bbox_AP.car``, ``segm_AP.car``).

    With ``classwise=True`` mmdet stores each class's AP as ``<class>_precision`` for every
    metric in turn, so segm overwrites bbox; here each metric is scored on its own and its
    per-class keys are renamed.

    When the model predicts nothing (early epochs, a frozen backbone, a high score threshold),
    mmdet logs an error and returns no key at all, which crashes ``save_best`` and every table;
    here every key is returned, AP 0 (per class: 0 for a class with ground truth, NaN without,
    as mmdet scores it), with a warning naming the cause.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(classwise=True, **kwargs)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics, merged = self.metrics, {}
        classes = set(self.dataset_meta['classes'])
        try:
            for metric in metrics:
                self.metrics = [metric]
                scores = super().compute_metrics(results)
                if not scores:  # mmdet found no prediction and returned nothing
                    scores = self.scores_without_predictions(metric, len(results))
                for key, value in scores.items():
                    name = key[:-len('_precision')]
                    merged[f'{metric}_AP.{name}' if name in classes else key] = value
        finally:
            self.metrics = metrics
        return merged

    def scores_without_predictions(self, metric: str, num_images: int) -> Dict[str, float]:
        MMLogger.get_current_instance().warning(
            f'{metric}: no prediction on any of the {num_images} images (all scores below the test '
            'score threshold?); its AP is reported as 0')
        scores = {f'{metric}_{item}': 0.0 for item in self.metric_items or SUMMARY_ITEMS}
        for cat_id in self.cat_ids:
            name = self._coco_api.load_cats(cat_id)[0]['name']
            has_ground_truth = bool(self._coco_api.get_ann_ids(cat_ids=[cat_id], iscrowd=False))
            scores[f'{name}_precision'] = 0.0 if has_ground_truth else float('nan')
        return scores
