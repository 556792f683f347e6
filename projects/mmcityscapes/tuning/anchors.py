"""k-means anchors: FPN anchor ratios and octave scales fitted to the training boxes.

mmdet's AnchorGenerator places, at every FPN level of stride s (4 ... 64), anchors of size
``s * scale`` for each octave scale and aspect ratio h/w. The boxes (non-crowd, resized like the
test pipeline) are scaled to unit area, since the FPN levels cover size, and clustered with
1 - IoU as the distance; the cluster h/w ratios become the anchor ratios. The octave scales are
then chosen to maximise the mean IoU of every box with its best anchor.
"""
import os.path as osp
from typing import List, Sequence, Tuple

import numpy as np
from mmengine.config import Config

from mmcityscapes.common.errors import UserError
from mmcityscapes.common.io import read_json
from mmcityscapes.datasets.layout import innermost_dataset

STRIDES = (4, 8, 16, 32, 64)
DEFAULT = dict(scales=[8.0], ratios=[0.5, 1.0, 2.0])  # mmdet's Mask R-CNN anchors


def load_boxes(ann_file: str, img_scale: Sequence[int], min_size: float = 0) -> np.ndarray:
    """(w, h) of the non-crowd boxes at least ``min_size`` px wide and tall, in pixels of the
    image resized (keeping its ratio) to ``img_scale``."""
    coco = read_json(ann_file)
    images = {img['id']: img for img in coco['images']}
    sizes = []
    for ann in coco.get('annotations', []):
        if ann['iscrowd']:
            continue
        img = images[ann['image_id']]
        factor = min(max(img_scale) / max(img['width'], img['height']),
                     min(img_scale) / min(img['width'], img['height']))
        w, h = ann['bbox'][2] * factor, ann['bbox'][3] * factor
        if min(w, h) >= min_size:
            sizes.append((w, h))
    if not sizes:
        raise UserError(f'no non-crowd boxes in {ann_file}')
    return np.asarray(sizes, np.float64)


def config_boxes(cfg: Config, min_size: float = 0) -> Tuple[np.ndarray, str, Tuple[int, int]]:
    """The training boxes of a Mask R-CNN config, at the scale of its test pipeline's Resize."""
    train = innermost_dataset(cfg.train_dataloader.dataset)
    ann_file = osp.join(train.get('data_root', ''), train.ann_file)
    resize = next(t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'Resize')
    return load_boxes(ann_file, resize['scale'], min_size), ann_file, tuple(resize['scale'])


def centered_iou(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU of (w, h) boxes with (w, h) anchors sharing a centre: shape (boxes, anchors)."""
    inter = np.minimum(boxes[:, None, 0], anchors[None, :, 0]) * np.minimum(boxes[:, None, 1], anchors[None, :, 1])
    union = boxes[:, None].prod(-1) + anchors[None].prod(-1) - inter
    return inter / union


def kmeans_iou(boxes: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 300) -> np.ndarray:
    """k-means on box shapes with 1 - IoU as the distance; returns (k, 2) cluster shapes."""
    centres = boxes[rng.choice(len(boxes), k, replace=False)]
    for _ in range(iterations):
        assign = centered_iou(boxes, centres).argmax(1)
        updated = np.array([np.median(boxes[assign == i], 0) if np.any(assign == i) else centres[i]
                            for i in range(k)])
        if np.allclose(updated, centres):
            break
        centres = updated
    return centres


def anchor_shapes(scales: Sequence[float], ratios: Sequence[float]) -> np.ndarray:
    """All (w, h) anchors of mmdet's AnchorGenerator over the FPN strides."""
    shapes = []
    for stride in STRIDES:
        for ratio in ratios:
            for scale in scales:
                h_ratio = np.sqrt(ratio)
                shapes.append((stride * scale / h_ratio, stride * scale * h_ratio))
    return np.asarray(shapes)


def mean_best_iou(boxes: np.ndarray, scales: Sequence[float], ratios: Sequence[float]) -> float:
    return float(centered_iou(boxes, anchor_shapes(scales, ratios)).max(1).mean())


def fit(boxes: np.ndarray, n_ratios: int, n_scales: int, seed: int) -> Tuple[List[float], List[float]]:
    """(scales, ratios): ``n_ratios`` k-means ratios and ``n_scales`` octave scales."""
    rng = np.random.default_rng(seed)
    # FPN levels and octave scales cover size, so cluster shape alone: boxes scaled to unit area
    shapes = boxes / np.sqrt(boxes.prod(1, keepdims=True))
    clusters = kmeans_iou(shapes, min(max(n_ratios, 1), len(shapes)), rng)
    ratios = sorted(round(float(h / w), 2) for w, h in clusters)
    # octave scales 2^(i / n_scales) apart, starting from the base that fits the boxes best
    candidates = np.geomspace(1, 32, 101)
    best = max(candidates, key=lambda base: mean_best_iou(
        boxes, [base * 2 ** (i / n_scales) for i in range(n_scales)], ratios))
    scales = [round(float(best * 2 ** (i / n_scales)), 2) for i in range(n_scales)]
    return scales, ratios


def fit_anchors(cfg: Config, ratios: int = 3, scales: int = 1, min_size: float = 4, seed: int = 0) -> Tuple[dict, str]:
    """Fit anchors to a Mask R-CNN config's training boxes; returns the tuned values
    (``anchor_scales``, ``anchor_ratios``) and a comment saying what they were fitted to.

    ``min_size`` (px, after resizing) drops slivers of occluded objects, which would otherwise
    form clusters of extreme ratios.
    """
    boxes, ann_file, img_scale = config_boxes(cfg, min_size)
    anchor_scales, anchor_ratios = fit(boxes, ratios, scales, seed)
    before, after = mean_best_iou(boxes, **DEFAULT), mean_best_iou(boxes, anchor_scales, anchor_ratios)
    note = (f'k-means fit to {len(boxes)} boxes of {ann_file} at image scale {img_scale}: mean best-anchor '
            f'IoU {before:.3f} with mmdet\'s default anchors, {after:.3f} with these')
    return dict(anchor_scales=anchor_scales, anchor_ratios=anchor_ratios), note
