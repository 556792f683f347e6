"""Confusion matrices of test predictions, as mmseg's and mmdet's ``confusion_matrix.py`` count
them, and their figure. Light: numpy (matplotlib when drawing)."""
from typing import Iterable, Sequence, Tuple

import numpy as np

from mmcityscapes.common.errors import UserError
from mmcityscapes.common.figures import save_figure, subplots


def semantic_confusion(samples: Iterable[Tuple[np.ndarray, np.ndarray]], num_classes: int,
                       ignore_index: int = 255) -> np.ndarray:
    """Pixel counts (ground-truth rows, predicted columns) over ``(ground truth, prediction)``
    class-index maps; pixels labelled ``ignore_index`` are left out."""
    counts = np.zeros(num_classes * num_classes, np.int64)
    for gt, pred in samples:
        valid = gt != ignore_index
        gt, pred = gt[valid].astype(np.int64), pred[valid]
        if (gt >= num_classes).any() or (pred >= num_classes).any():
            raise UserError(f'class index above {num_classes - 1} in a ground truth or prediction map')
        counts += np.bincount(gt * num_classes + pred, minlength=num_classes ** 2)
    return counts.reshape(num_classes, num_classes)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4), x1y1x2y2."""
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.nan_to_num(inter / (area(a)[:, None] + area(b)[None] - inter))


def detection_confusion(images: Iterable[tuple], num_classes: int, score_thr: float = 0.3,
                        iou_thr: float = 0.5) -> np.ndarray:
    """mmdet's detection confusion matrix, (num_classes + 1) square, the last row and column
    being background: a detection (score >= ``score_thr``) counts once for every ground-truth box
    it overlaps by IoU >= ``iou_thr`` (row: that box's class), or in the background row if none;
    a ground-truth box that no detection of its class matches counts in the background column.

    Args:
        images: per image ``(gt_boxes (G, 4), gt_labels (G,), boxes (D, 4), labels (D,), scores (D,))``,
            the ground truth without its ignored (crowd) regions.
    """
    matrix = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    for gt_boxes, gt_labels, boxes, labels, scores in images:
        kept = scores >= score_thr
        boxes, labels = boxes[kept], labels[kept]
        overlaps = box_iou(boxes, gt_boxes) >= iou_thr
        matched = np.zeros(len(gt_labels), bool)
        for label, hits in zip(labels, overlaps):
            if not hits.any():
                matrix[-1, label] += 1
            for j in np.flatnonzero(hits):
                matrix[gt_labels[j], label] += 1
                matched[j] |= gt_labels[j] == label
        np.add.at(matrix[:, -1], gt_labels[~matched], 1)
    return matrix


def confusion_figure(matrix: np.ndarray, labels: Sequence[str], path: str, title: str) -> None:
    """The row-normalised matrix (% of each ground-truth row) as a labelled heat map PNG."""
    rows = matrix.sum(1, keepdims=True)
    with np.errstate(divide='ignore', invalid='ignore'):
        share = np.where(rows > 0, 100 * matrix / rows, 0)
    n = len(labels)
    fig, ax = subplots(figsize=(2 + 0.5 * n, 1.5 + 0.5 * n))
    image = ax.imshow(share, cmap='Blues', vmin=0, vmax=100)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label='% of the ground-truth row')
    ax.set_xticks(range(n), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set(xlabel='prediction', ylabel='ground truth', title=title)
    for i in range(n):
        for j in range(n):
            if share[i, j] >= 0.5:
                ax.text(j, i, f'{share[i, j]:.0f}', ha='center', va='center', fontsize=6,
                        color='white' if share[i, j] > 50 else 'black')
    fig.tight_layout()
    save_figure(fig, path)
