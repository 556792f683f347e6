"""Semantic segmentation metrics from the confusion counts: the metric set of the U-Net encoder
comparison (athar-usama/semantic, configs/README.md)."""
import warnings
from collections import OrderedDict
from typing import Dict, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from numpy.typing import ArrayLike
from prettytable import PrettyTable

PER_CLASS = ('IoU', 'F1', 'Precision', 'Recall', 'Specificity')


def as_mmseg_sample(sample: dict) -> dict:
    """A data sample with its semantic maps under mmseg's key (``data``); mmdet's panoptic models
    hold them under ``sem_seg``."""
    sample = dict(sample)
    for key in ('pred_sem_seg', 'gt_sem_seg'):
        if 'sem_seg' in sample.get(key, {}):
            sample[key] = dict(data=sample[key]['sem_seg'])
    return sample


@METRICS.register_module()
class SegmentationMetric(IoUMetric):
    """mIoU, aAcc, mAcc and per-class/mean F1 (= Dice), precision, recall (= sensitivity) and
    specificity, all in percent.

    mmseg's IoUMetric accumulates, per class, the intersection (true positives), union,
    predicted and labelled areas over valid pixels; every metric follows from them:
    FP = predicted - TP, FN = labelled - TP, TN = valid - TP - FP - FN. A metric is NaN only
    where its own denominator is 0 (F1 = Dice = 2TP / (2TP + FP + FN): a class neither present
    nor predicted; precision: not predicted; recall: not present) and NaNs are left out of the
    means, as in mmseg: a class predicted but absent scores IoU = F1 = 0, counted in mIoU and mF1.

    Returns ``aAcc, mIoU, mAcc, mF1, mPrecision, mRecall, mSpecificity`` and, with
    ``per_class=True``, ``<metric>.<class>`` for each metric in ``PER_CLASS``.

    It also scores the semantic results of mmdet's panoptic models (``pred_sem_seg`` and
    ``gt_sem_seg`` holding ``sem_seg``, where mmseg's hold ``data``; from mmdet's scope
    ``type='mmseg.SegmentationMetric'``): mmdet's own ``SemSegMetric`` reports as aAcc the mean of
    the per-class accuracies (mAcc), not the pixel accuracy.

    Args:
        per_class (bool): also return each class's metrics. Defaults to True.
        **kwargs: mmseg's ``IoUMetric`` arguments (``ignore_index``, ``output_dir``, ...).
    """

    def __init__(self, per_class: bool = True, **kwargs) -> None:
        super().__init__(iou_metrics=['mIoU'], **kwargs)
        self.per_class = per_class

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """mmseg's ``process`` on mmseg's data samples or on mmdet's."""
        super().process(data_batch, [as_mmseg_sample(sample) for sample in data_samples])

    @staticmethod
    def confusion_metrics(tp: ArrayLike, union: ArrayLike, predicted: ArrayLike, labelled: ArrayLike) -> Tuple[Dict[str,
                          np.ndarray], np.ndarray]:
        """Per-class metrics (fractions) and aAcc from the accumulated counts: mmseg's
        ``total_area_to_metrics`` (IoU, Dice as F1, precision, recall; in float64) plus specificity."""
        areas = [torch.as_tensor(np.asarray(x, np.float64)) for x in (tp, union, predicted, labelled)]
        mmseg = IoUMetric.total_area_to_metrics(*areas, metrics=['mIoU', 'mDice', 'mFscore'])
        tp, _, predicted, labelled = (area.numpy() for area in areas)
        fp, fn = predicted - tp, labelled - tp
        tn = labelled.sum() - tp - fp - fn
        with np.errstate(divide='ignore', invalid='ignore'):  # 0 / 0: NaN, the metric is undefined
            specificity = tn / (tn + fp)
        per_class = OrderedDict(IoU=mmseg['IoU'], F1=mmseg['Dice'], Precision=mmseg['Precision'],
                                Recall=mmseg['Recall'], Specificity=specificity)
        return per_class, mmseg['aAcc']

    def compute_metrics(self, results: list) -> Dict[str, float]:
        counts = [torch.stack(r).sum(0).cpu().numpy() for r in zip(*results)]
        logger = MMLogger.get_current_instance()
        if counts[3].sum() == 0:  # every pixel ignored: every metric is undefined (NaN), reported as 0
            logger.warning(f'no labelled pixel (all {self.ignore_index}) in the {len(results)} evaluated images; '
                           'every mean metric is reported as 0')
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)  # 0 / 0 and the mean of no defined value
            per_class, accuracy = self.confusion_metrics(*counts)
            metrics = OrderedDict(aAcc=accuracy, mIoU=np.nanmean(per_class['IoU']),
                                  mAcc=np.nanmean(per_class['Recall']))
            for name in PER_CLASS[1:]:
                metrics[f'm{name}'] = np.nanmean(per_class[name])
        metrics = OrderedDict((k, round(np.nan_to_num(float(v)) * 100, 2)) for k, v in metrics.items())

        classes = self.dataset_meta['classes']
        table = PrettyTable(['class', *PER_CLASS])
        for i, name in enumerate(classes):
            table.add_row([name, *(round(float(per_class[m][i]) * 100, 2) for m in PER_CLASS)])
        print_log('per class results:\n' + table.get_string(), logger=logger)
        if self.per_class:
            for m in PER_CLASS:
                for i, name in enumerate(classes):
                    metrics[f'{m}.{name}'] = round(float(per_class[m][i]) * 100, 2)
        return metrics
