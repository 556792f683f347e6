"""Cityscapes instance-level AP, as cityscapesscripts' evalInstanceLevelSemanticLabeling computes
it, without its cost.

The official evaluator decodes one PNG per predicted mask, then compares each mask with every
ground-truth instance of its class over the whole image. Here one ``np.unique`` of the
ground-truth ids under a mask gives all of that mask's intersections and its void overlap at
once (``match_image``). The scoring (``evaluate``) is the official procedure on those counts:
the same overlaps (0.5:0.95:0.05), minimum region size (100 px), group and void handling,
duplicate handling and step-wise precision-recall integration. It works on predictions in
memory; ``results`` applies it to files in the official format.
"""
from typing import Dict, Iterable, Sequence, Tuple

import cv2
import numpy as np
from cityscapesscripts.helpers.labels import id2label, labels

from mmcityscapes.cityscapes.labels import is_instance, label_name
from mmcityscapes.common.tables import markdown_table

# args.instLabels of the official script, in its order
INSTANCE_LABELS = [label.name for label in labels if label.id >= 0 and label.hasInstances and not label.ignoreInEval]
VOID_IDS = np.array([label.id for label in labels if label.ignoreInEval])
OVERLAPS = np.arange(0.5, 1., 0.05)
MIN_REGION_SIZE = 100


def ground_truth_under(gt_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The ground-truth ids under a boolean mask, read inside the mask's bounding box only
    (``cv2.boundingRect`` of its pixels): most masks cover a small part of the image."""
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask).view(np.uint8))
    return gt_ids[y:y + h, x:x + w][mask[y:y + h, x:x + w]]


def match_image(gt_ids: np.ndarray, predictions: Iterable[Tuple[np.ndarray, int, float]]) -> dict:
    """The counts the official matching collects for one image.

    Args:
        gt_ids (ndarray): the ``*_gtFine_instanceIds.png`` image (H, W).
        predictions (iterable): ``(mask, label_id, score)`` with a boolean (H, W) mask and a
            Cityscapes label id, in the order of the prediction file.

    Returns:
        dict: per instance class, ``gt``: list of (instance id, pixel count) and ``pred``: list of
        dicts (score, pixels, void, matches: list of (gt index, intersection)).
    """
    ids, counts = np.unique(gt_ids, return_counts=True)
    result = {name: dict(gt=[], pred=[]) for name in INSTANCE_LABELS}
    gt_index = {}
    for instance_id, count in zip(ids.tolist(), counts.tolist()):
        name = label_name(instance_id)
        if name in result:
            gt_index[instance_id] = len(result[name]['gt'])
            result[name]['gt'].append((instance_id, count))
    for mask, label_id, score in predictions:
        name = id2label[int(label_id)].name
        if name not in result:
            continue
        under = ground_truth_under(gt_ids, np.asarray(mask, bool))
        if not under.size:
            continue
        values, inter = np.unique(under, return_counts=True)
        void = int(inter[np.isin(values, VOID_IDS)].sum())
        matches = [(gt_index[v], int(n)) for v, n in zip(values.tolist(), inter.tolist())
                   if v in gt_index and label_name(v) == name]
        result[name]['pred'].append(dict(score=float(score), pixels=int(under.size), void=void,
                                         matches=matches))
    return result


def average_precision(y_true: np.ndarray, y_score: np.ndarray, hard_fns: int) -> float:
    """The official precision-recall curve and its step-wise integral.

    With no scored example (every prediction of the class ignored, no ground truth matched)
    the official script fails on an empty array; the curve is then only its artificial point
    (precision 1 at recall 0), whose integral is 0.
    """
    if not len(y_score):
        return 0.0
    order = np.argsort(y_score)
    y_score, y_true = y_score[order], y_true[order]
    cumsum = np.cumsum(y_true)
    _, unique_indices = np.unique(y_score, return_index=True)
    n_examples, n_true = len(y_score), cumsum[-1]
    precision = np.zeros(len(unique_indices) + 1)
    recall = np.zeros(len(unique_indices) + 1)
    cumsum = np.append(cumsum, 0)
    for i, index in enumerate(unique_indices):
        before = cumsum[index - 1]
        tp = n_true - before
        fp = n_examples - index - tp
        fn = before + hard_fns
        precision[i] = float(tp) / (tp + fp)
        recall[i] = float(tp) / (tp + fn)
    precision[-1], recall[-1] = 1., 0.
    widths = np.convolve(np.append(np.append(recall[0], recall), 0.), [-0.5, 0, 0.5], 'valid')
    return np.dot(precision, widths)


def class_ap(images: Sequence[dict], name: str, threshold: float) -> float:
    """AP of one class at one overlap threshold over ``match_image`` results."""
    y_true, y_score, hard_fns = [], [], 0
    have_gt = have_pred = False
    for image in images:
        gts, preds = image[name]['gt'], image[name]['pred']
        kept = [i for i, (inst, pixels) in enumerate(gts) if is_instance(inst) and pixels >= MIN_REGION_SIZE]
        have_gt |= bool(kept)
        have_pred |= bool(preds)
        matched_scores = {i: [] for i in kept}
        for pred in preds:
            for i, inter in pred['matches']:
                if i in matched_scores and inter / (gts[i][1] + pred['pixels'] - inter) > threshold:
                    matched_scores[i].append(pred['score'])
        for scores in matched_scores.values():
            if not scores:
                hard_fns += 1
                continue
            # the best match is a true positive, the others are false positives
            y_true += [1] + [0] * (len(scores) - 1)
            ranked = sorted(scores, reverse=True)
            y_score += ranked
        for pred in preds:
            if any(inter / (gts[i][1] + pred['pixels'] - inter) > threshold for i, inter in pred['matches']):
                continue
            ignored = pred['void']
            for i, inter in pred['matches']:
                ignored += inter * ((not is_instance(gts[i][0])) + (gts[i][1] < MIN_REGION_SIZE))
            if float(ignored) / pred['pixels'] <= threshold:
                y_true.append(0)
                y_score.append(pred['score'])
    if have_gt and have_pred:
        return average_precision(np.asarray(y_true, float), np.asarray(y_score, float), hard_fns)
    return 0.0 if have_gt else float('nan')


def evaluate(images: Sequence[dict]) -> Dict[str, float]:
    """Official averages: ``mAP`` (AP over 0.5:0.95), ``AP50`` and per-class AP/AP50 (fractions)."""
    ap = np.array([[class_ap(images, name, t) for t in OVERLAPS] for name in INSTANCE_LABELS])
    at50 = np.isclose(OVERLAPS, 0.5)
    with np.errstate(invalid='ignore'):
        result = dict(mAP=float(np.nanmean(ap)), AP50=float(np.nanmean(ap[:, at50])))
    for name, row in zip(INSTANCE_LABELS, ap):
        result[f'AP.{name}'] = float(np.average(row))
        result[f'AP50.{name}'] = float(np.average(row[at50]))
    return result


def markdown(result: Dict[str, float]) -> str:
    """Per-class and mean AP / AP50 (in %) of an ``evaluate`` result."""
    rows = [(name, f'{100 * result[f"AP.{name}"]:.1f}', f'{100 * result[f"AP50.{name}"]:.1f}')
            for name in INSTANCE_LABELS]
    rows.append(('**mean**', f'{100 * result["mAP"]:.1f}', f'{100 * result["AP50"]:.1f}'))
    return markdown_table(['class', 'AP', 'AP50'], rows)
