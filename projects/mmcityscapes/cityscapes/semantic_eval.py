"""Cityscapes pixel-level IoU and iIoU (classes and categories), as cityscapesscripts'
evalPixelLevelSemanticLabeling computes them, without its cost.

Per image the official script sorts every pixel (``np.unique`` of gt * n + pred) for the
confusion matrix, and compares the whole image once per ground-truth instance and once per
category. Here ``count_image`` gets the same counts from four histograms (cv2.calcHist). ``evaluate``
fills the official script's own confusion matrix and instance statistics with those counts and
scores them with its own functions, so the result is the official result dictionary.
"""
import copy
from typing import Iterable, Optional

import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as official
import cv2
import numpy as np
from cityscapesscripts.helpers.labels import id2label, labels

from mmcityscapes.cityscapes.labels import INSTANCE_OFFSET, NUM_LABEL_IDS as NUM_IDS, label_id
from mmcityscapes.common.errors import UserError
from mmcityscapes.common.tables import markdown_table

CATEGORY_NAMES = sorted({label.category for label in labels})
CATEGORY_LUT = np.zeros(256, np.uint8)  # label id -> 1 + category index; 0 for other values
CATEGORY_LUT[:NUM_IDS] = [1 + CATEGORY_NAMES.index(id2label[i].category) for i in range(NUM_IDS)]



def count_image(pred: np.ndarray, gt: np.ndarray, instances: np.ndarray) -> dict:
    """The counts the official script collects from one image.

    Args:
        pred (ndarray): predicted label ids (H, W).
        gt (ndarray): ``*_gtFine_labelIds.png`` (H, W).
        instances (ndarray): ``*_gtFine_instanceIds.png`` (H, W).

    Returns:
        dict: ``confusion`` (NUM_IDS x NUM_IDS, gt rows), and per ground-truth instance
        (id > 1000, as the official script): ``ids``, ``size``, ``tp`` (pixels predicted as its
        class) and ``category_tp`` (pixels predicted as any class of its category).
    """
    if pred.shape != gt.shape or pred.shape != instances.shape or pred.ndim != 2:
        raise UserError(f'prediction of shape {pred.shape} for ground truth of shape {gt.shape}')
    if pred.size >= 2 ** 24:  # cv2 histograms count in float32
        raise ValueError(f'images of {pred.size} pixels are too large to count exactly')
    for name, image in (('prediction', pred), ('ground truth', gt)):
        if image.max() >= NUM_IDS:
            raise UserError(f'{name} holds label id {image.max()} (Cityscapes ids are 0..{NUM_IDS - 1})')
    pred, gt = pred.astype(np.uint8, copy=False), gt.astype(np.uint8, copy=False)
    instances = instances.astype(np.uint16, copy=False)
    confusion = cv2.calcHist([gt, pred], [0, 1], None, [NUM_IDS, NUM_IDS], [0, NUM_IDS, 0, NUM_IDS])
    label = (instances // INSTANCE_OFFSET).astype(np.uint8)  # the label id of every instance pixel
    size = _histogram(instances)
    tp = _histogram(instances, label == pred)
    category_tp = _histogram(instances, cv2.LUT(label, CATEGORY_LUT) == cv2.LUT(pred, CATEGORY_LUT))
    present = np.flatnonzero(size)
    present = present[present > INSTANCE_OFFSET]
    return dict(confusion=confusion.astype(np.int64), ids=present, size=size[present], tp=tp[present],
                category_tp=category_tp[present])


def _histogram(instances: np.ndarray, where: Optional[np.ndarray] = None) -> np.ndarray:
    """Pixel count per instance id (of the pixels ``where`` is true)."""
    mask = None if where is None else where.view(np.uint8)
    bins = NUM_IDS * INSTANCE_OFFSET
    return cv2.calcHist([instances], [0], mask, [bins], [0, bins]).ravel().astype(np.int64)


def evaluate(images: Iterable[dict]) -> dict:
    """The official result dictionary (``classScores``, ``classInstScores``, ``categoryScores``,
    ``categoryInstScores``, their ``averageScore*`` and ``confMatrix``) from ``count_image``
    results."""
    args = copy.copy(official.args)
    args.quiet, args.JSONOutput, args.evalPixelAccuracy = True, False, False
    confusion = official.generateMatrix(args)
    stats = official.generateInstanceStats(args)
    for image in images:
        confusion += image['confusion'].astype(confusion.dtype)
        for inst_id, size, tp, category_tp in zip(image['ids'].tolist(), image['size'].tolist(),
                                                  image['tp'].tolist(), image['category_tp'].tolist()):
            label = id2label[label_id(inst_id)]
            if label.ignoreInEval:
                continue
            weight = args.avgClassSize[label.name] / float(size)
            entries = [(stats['classes'][label.name], tp)]
            if label.category in stats['categories']:
                entries.append((stats['categories'][label.category], category_tp))
            for entry, hits in entries:
                entry['tp'] += hits
                entry['fn'] += size - hits
                entry['tpWeighted'] += float(hits) * weight
                entry['fnWeighted'] += float(size - hits) * weight
    class_names = [id2label[i].name for i in args.evalLabels]
    class_iou = {n: official.getIouScoreForLabel(i, confusion, args) for n, i in zip(class_names, args.evalLabels)}
    class_iiou = {n: official.getInstanceIouScoreForLabel(i, confusion, stats, args)
                  for n, i in zip(class_names, args.evalLabels)}
    categories = list(official.category2labels)
    category_iou = {c: official.getIouScoreForCategory(c, confusion, args) for c in categories}
    category_iiou = {c: official.getInstanceIouScoreForCategory(c, confusion, stats, args) for c in categories}
    return official.createResultDict(confusion, class_iou, class_iiou, category_iou, category_iiou, {}, args)


def markdown(result: dict) -> str:
    """Tables of class and category IoU / iIoU (in %) of an ``evaluate`` result, as the official
    script prints them."""
    shown = lambda v: '' if np.isnan(v) else f'{100 * v:.1f}'  # noqa: E731
    tables = []
    for kind, scores, inst_scores, average, inst_average in (
            ('class', 'classScores', 'classInstScores', 'averageScoreClasses', 'averageScoreInstClasses'),
            ('category', 'categoryScores', 'categoryInstScores', 'averageScoreCategories',
             'averageScoreInstCategories')):
        names = [n for n, v in result[scores].items() if not np.isnan(v) or
                 (kind == 'class' and not official.name2label[n].ignoreInEval)]
        rows = [(n, shown(result[scores][n]), shown(result[inst_scores][n])) for n in names]
        rows.append(('**mean**', shown(result[average]), shown(result[inst_average])))
        tables.append(markdown_table([kind, 'IoU', 'iIoU'], rows))
    return '\n'.join(tables)
