"""Seeded noisy predictions of generated Cityscapes ground truth, in the official result format:
what ``tools/analysis_tools/benchmark_eval.py`` (and the tests) score with every evaluator."""
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
from cityscapesscripts.helpers.labels import labels, name2label

from mmcityscapes.cityscapes import panoptic
from mmcityscapes.cityscapes.files import frame
from mmcityscapes.cityscapes.instance_eval import INSTANCE_LABELS
from mmcityscapes.cityscapes.labels import label_id
from mmcityscapes.cityscapes.results import write_instance_result, write_semantic_result
from mmcityscapes.common.io import read_json, write_json

CLASSES = tuple(INSTANCE_LABELS)  # the 8 evaluated instance classes
THING_IDS = [name2label[name].id for name in CLASSES]


def noisy_predictions(gt: np.ndarray, rng: np.random.Generator, n_masks: int = 0) -> List[Tuple[np.ndarray, int,
                      float]]:
    """Detections of a ground-truth instance map: misses, shifted borders, wrong labels,
    duplicates, false positives (at least ``n_masks`` in all), a hit on the void ego vehicle
    and an empty mask."""
    kernel = np.ones((3, 3), np.uint8)
    preds = []
    for inst in np.unique(gt):
        label = label_id(inst)
        if label not in THING_IDS or rng.random() < 0.2:
            continue
        mask = (gt == inst).astype(np.uint8)
        mask = cv2.dilate(mask, kernel) if rng.random() < 0.5 else cv2.erode(mask, kernel)
        label = label if rng.random() > 0.1 else int(rng.choice(THING_IDS))
        preds.append((mask.astype(bool), int(label), float(rng.random())))
        if rng.random() < 0.2:
            preds.append((np.roll(mask, 2, axis=1).astype(bool), int(label), float(rng.random())))
    side = max(8, gt.shape[0] // 8)
    target = max(n_masks - 2, len(preds) + 3)  # at least three false positives
    while len(preds) < target:
        mask = np.zeros(gt.shape, bool)
        y, x = rng.integers(0, gt.shape[0] - side), rng.integers(0, gt.shape[1] - side)
        mask[y:y + side, x:x + side] = True
        preds.append((mask, int(rng.choice(THING_IDS)), float(rng.random())))
    preds.append((gt == 1, 26, 0.5))  # on the ego vehicle: void
    preds.append((np.zeros(gt.shape, bool), 26, 0.9))  # empty: skipped
    return preds


def write_predictions(gt_files: Sequence[str], pred_dir: str, n_masks: int, seed: int = 0) -> Dict[str, list]:
    """Official-format instance prediction files of ``*_gtFine_instanceIds.png`` files; returns
    ``{gt file: [(mask, label id, score)]}``, the same predictions in memory."""
    rng = np.random.default_rng(seed)
    in_memory = {}
    for gt_path in gt_files:
        preds = noisy_predictions(cv2.imread(gt_path, cv2.IMREAD_UNCHANGED), rng, n_masks)
        write_instance_result(pred_dir, frame(gt_path), preds)
        in_memory[gt_path] = preds
    return in_memory


def noisy_labels(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A label-id prediction of a ``*_gtFine_labelIds.png``: shifted, two classes swapped, blobs
    of random evaluated labels, and void ground truth predicted as road."""
    pred = np.roll(gt, (int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(0, 1))
    evaluated = [label.id for label in labels if label.id >= 0 and not label.ignoreInEval]
    a, b = rng.choice(evaluated, 2, replace=False)
    pred = np.where(pred == a, b, np.where(pred == b, a, pred))
    height, width = gt.shape
    for _ in range(20):
        y, x = rng.integers(0, height - height // 8), rng.integers(0, width - width // 8)
        pred[y:y + height // 8, x:x + width // 8] = rng.choice(evaluated)
    pred[pred < 7] = name2label['road'].id
    return pred.astype(np.uint8)


def write_label_predictions(gt_files: Sequence[str], pred_dir: str, seed: int = 0) -> None:
    """``<frame>_pred.png`` label-id predictions of ``*_gtFine_labelIds.png`` files."""
    rng = np.random.default_rng(seed)
    for gt_path in gt_files:
        labels = noisy_labels(cv2.imread(gt_path, cv2.IMREAD_UNCHANGED), rng)
        write_semantic_result(pred_dir, f'{frame(gt_path)}_pred', labels)


def noisy_panoptic(gt_ids: np.ndarray, gt_segments: Sequence[dict], rng: np.random.Generator) -> \
        Tuple[np.ndarray, List[dict]]:
    """A panoptic prediction of a ground-truth segment map: segments missed, shifted, relabelled
    (a thing as another thing, stuff as other stuff), split into two, false positives, crowd
    regions predicted as instances, void left and renumbered segment ids."""
    pred = np.zeros_like(gt_ids)
    segments, next_id = [], 1
    things = panoptic.THING_IDS
    for segment in gt_segments:
        if rng.random() < 0.15:
            continue
        mask = gt_ids == segment['id']
        if rng.random() < 0.5:
            mask = np.roll(mask, int(rng.integers(-4, 5)), axis=int(rng.integers(0, 2)))
        category = segment['category_id']
        if rng.random() < 0.1:
            category = int(rng.choice(things if category in things else panoptic.STUFF_IDS))
        halves = [mask]
        if rng.random() < 0.15:  # split at its middle column: two segments, each under half
            ys, xs = np.nonzero(mask)
            if len(xs):
                middle = int(np.median(xs))
                halves = [mask & (np.arange(mask.shape[1]) < middle), mask & (np.arange(mask.shape[1]) >= middle)]
        for part in halves:
            part = part & (pred == 0)
            if part.any():
                pred[part] = next_id
                segments.append(dict(id=next_id, category_id=category))
                next_id += 1
    height, width = gt_ids.shape
    for _ in range(3):  # false positives
        y, x = int(rng.integers(0, height - height // 10)), int(rng.integers(0, width - width // 10))
        box = np.zeros(gt_ids.shape, bool)
        box[y:y + height // 10, x:x + width // 10] = True
        pred[box] = next_id
        segments.append(dict(id=next_id, category_id=int(rng.choice(panoptic.CATEGORIES)['id'])))
        next_id += 1
    present = set(np.unique(pred).tolist())
    return pred, [s for s in segments if s['id'] in present]


def write_panoptic_predictions(gt_json: str, gt_folder: str, pred_json: str, seed: int = 0) -> None:
    """Noisy panoptic predictions of every image of a panoptic ground truth, in the official
    layout: ``pred_json`` and the PNG folder of the same name beside it."""
    rng = np.random.default_rng(seed)
    folder = pred_json[:-len('.json')]
    annotations = []
    for annotation in read_json(gt_json)['annotations']:
        gt_ids = panoptic.read_panoptic_png(osp.join(gt_folder, annotation['file_name']))
        pred, segments = noisy_panoptic(gt_ids, annotation['segments_info'], rng)
        name = annotation['image_id'] + '_panoptic_pred.png'
        panoptic.write_panoptic_png(osp.join(folder, name), pred)
        annotations.append(dict(image_id=annotation['image_id'], file_name=name, segments_info=segments))
    write_json(dict(annotations=annotations), pred_json)
