"""Fit FPN anchor scales and ratios to the training boxes with k-means (IoU distance).

    python tools/analysis_tools/kmeans_anchors.py data/cityscapes/annotations/instancesonly_filtered_gtFine_train.json
    python tools/analysis_tools/kmeans_anchors.py ANN_JSON --ratios 3 --scales 1 --out configs/_base_/tuned/anchors.py

mmdet's AnchorGenerator places, at every FPN level of stride s (4 ... 64), anchors of size
``s * scale`` for each octave scale and aspect ratio h/w. The boxes (non-crowd, resized like
the training pipeline with ``--img-scale``) are scaled to unit area, since the FPN levels cover
size, and clustered with 1 - IoU as the distance; the cluster h/w ratios become the anchor
ratios. The octave scales are then chosen to
maximise the mean IoU of every box with its best anchor. The tool prints that mean IoU for the
default anchors (scales [8], ratios [0.5, 1, 2]) and for the fitted ones, and writes the
fitted anchors as the variables-only config that configs/maskrcnn_stage2.py inherits.
"""
import argparse
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from projects.mmcityscapes.utils.io import DatasetError, read_json, write_text  # noqa: E402

STRIDES = (4, 8, 16, 32, 64)
DEFAULT = dict(scales=[8.0], ratios=[0.5, 1.0, 2.0])


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('ann_file', help='COCO instances json (the train split)')
    parser.add_argument('--ratios', type=int, default=3, help='number of aspect ratios')
    parser.add_argument('--scales', type=int, default=1, help='number of octave scales per level')
    parser.add_argument('--img-scale', type=int, nargs=2, default=(2048, 1024), metavar=('W', 'H'),
                        help='training image scale: boxes are resized to it (keep ratio)')
    parser.add_argument('--min-size', type=float, default=4,
                        help='ignore boxes thinner than this (px, after resizing): slivers of occluded '
                             'objects would otherwise form clusters of extreme ratios')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default='configs/_base_/tuned/anchors.py')
    return parser.parse_args()


def load_boxes(ann_file, img_scale, min_size=0):
    """(w, h) of the non-crowd boxes at least ``min_size`` px wide and tall, in pixels of the
    resized training image."""
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
        raise DatasetError(f'no non-crowd boxes in {ann_file}')
    return np.asarray(sizes, np.float64)


def centered_iou(boxes, anchors):
    """IoU of (w, h) boxes with (w, h) anchors sharing a centre: shape (boxes, anchors)."""
    inter = np.minimum(boxes[:, None, 0], anchors[None, :, 0]) * np.minimum(boxes[:, None, 1], anchors[None, :, 1])
    union = boxes[:, None].prod(-1) + anchors[None].prod(-1) - inter
    return inter / union


def kmeans_iou(boxes, k, rng, iterations=300):
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


def anchor_shapes(scales, ratios):
    """All (w, h) anchors of mmdet's AnchorGenerator over the FPN strides."""
    shapes = []
    for stride in STRIDES:
        for ratio in ratios:
            for scale in scales:
                h_ratio = np.sqrt(ratio)
                shapes.append((stride * scale / h_ratio, stride * scale * h_ratio))
    return np.asarray(shapes)


def mean_best_iou(boxes, scales, ratios):
    return float(centered_iou(boxes, anchor_shapes(scales, ratios)).max(1).mean())


def fit(boxes, n_ratios, n_scales, seed):
    rng = np.random.default_rng(seed)
    # FPN levels and octave scales cover size, so cluster shape alone: boxes scaled to unit area
    shapes = boxes / np.sqrt(boxes.prod(1, keepdims=True))
    clusters = kmeans_iou(shapes, max(n_ratios, 1), rng)
    ratios = sorted(round(float(h / w), 2) for w, h in clusters)
    # octave scales 2^(i / n_scales) apart, starting from the base that fits the boxes best
    candidates = np.geomspace(1, 32, 101)
    best = max(candidates, key=lambda base: mean_best_iou(
        boxes, [base * 2 ** (i / n_scales) for i in range(n_scales)], ratios))
    scales = [round(float(best * 2 ** (i / n_scales)), 2) for i in range(n_scales)]
    return scales, ratios


def main():
    args = parse_args()
    try:
        boxes = load_boxes(args.ann_file, args.img_scale, args.min_size)
    except DatasetError as e:
        sys.exit(f'error: {e}')
    scales, ratios = fit(boxes, args.ratios, args.scales, args.seed)
    before = mean_best_iou(boxes, **DEFAULT)
    after = mean_best_iou(boxes, scales, ratios)
    write_text(
        '# RPN anchors for stage 2, per FPN level (strides 4-64): octave scales and h/w ratios.\n'
        f'# Fitted by tools/analysis_tools/kmeans_anchors.py to {len(boxes)} boxes of\n'
        f'# {args.ann_file} at image scale {tuple(args.img_scale)}:\n'
        f'# mean best-anchor IoU {before:.3f} with mmdet\'s default anchors, {after:.3f} with these.\n'
        f'anchor_scales = {scales}\nanchor_ratios = {ratios}\n', args.out)
    print(f'{len(boxes)} boxes; mean best-anchor IoU: default (scales {DEFAULT["scales"]}, ratios '
          f'{DEFAULT["ratios"]}) {before:.3f} -> fitted (scales {scales}, ratios {ratios}) {after:.3f}')
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
