"""Cityscapes panoptic segmentation: the ground truth cityscapesscripts' createPanopticImgs writes,
and PQ, SQ and RQ as its evalPanopticSemanticLabeling computes them.

A panoptic PNG stores a segment id per pixel as colour (id = R + 256 G + 65536 B, 0 is void);
its JSON lists each segment's category (a Cityscapes label id), area, box and crowd flag. The
ground truth of an image comes from its ``*_gtFine_instanceIds.png`` (``ground_truth_segments``,
per image, in parallel). The evaluation (``match_image`` per image, ``evaluate`` over all) is the
official matching: IoU > 0.5 within a category, the union without the prediction's void pixels,
crowd regions neither matched nor missed, an unmatched prediction more than half inside void or
a crowd region of its category not a false positive. Light: no torch.
"""
import json
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
from cityscapesscripts.helpers.labels import id2label, labels

from mmcityscapes.cityscapes import files
from mmcityscapes.cityscapes.labels import INSTANCE_OFFSET
from mmcityscapes.common.errors import UserError
from mmcityscapes.common.io import atomic_output, is_complete_png, is_up_to_date, read_png, write_text
from mmcityscapes.common.parallel import track_parallel
from mmcityscapes.common.tables import markdown_table

# The categories of convert2panoptic (label ids), in its order: every class that is evaluated.
CATEGORIES = [dict(id=label.id, name=label.name, color=label.color, supercategory=label.category,
                   isthing=int(label.hasInstances)) for label in labels if not label.ignoreInEval]
CATEGORY_IDS = {category['id'] for category in CATEGORIES}
THING_IDS = [category['id'] for category in CATEGORIES if category['isthing']]
STUFF_IDS = [category['id'] for category in CATEGORIES if not category['isthing']]
VOID = 0


def ids_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Segment ids (H, W) as the RGB panoptic image (H, W, 3), as convert2panoptic colours them."""
    ids = ids.astype(np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], -1).astype(np.uint8)


def rgb_to_ids(rgb: np.ndarray) -> np.ndarray:
    """The segment ids (uint32) of an RGB panoptic image: R + 256 G + 65536 B."""
    ids = rgb[..., 0].astype(np.uint32)
    ids |= rgb[..., 1].astype(np.uint32) << 8
    ids |= rgb[..., 2].astype(np.uint32) << 16
    return ids


def overlap_counts(gt_ids: np.ndarray, pred_ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ground-truth id, predicted id, pixel count) of every pair of segments that overlap, as the
    official script counts them (one sort of the pairs' 64-bit keys)."""
    keys, counts = np.unique((gt_ids.ravel().astype(np.uint64) << np.uint64(32)) | pred_ids.ravel().astype(np.uint64),
                             return_counts=True)
    return keys >> np.uint64(32), keys & np.uint64(0xFFFFFFFF), counts


def ground_truth_segments(instance_ids: np.ndarray) -> Tuple[np.ndarray, List[dict]]:
    """(segment ids, segments info) of an ``*_gtFine_instanceIds.png``, as convert2panoptic makes
    them: a segment per instance id of an evaluated class, its id the instance id; a value under
    1000 of a thing class is a crowd region; ignored classes become void (0)."""
    segments, segment_ids = [], np.zeros(instance_ids.shape, np.int64)
    values, inverse = np.unique(instance_ids, return_inverse=True)
    inverse = inverse.reshape(instance_ids.shape)
    for index, value in enumerate(values.tolist()):
        label = id2label[value // INSTANCE_OFFSET if value >= INSTANCE_OFFSET else value]
        if label.ignoreInEval:
            continue
        mask = inverse == index
        ys, xs = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
        segment_ids[mask] = value
        segments.append(dict(id=int(value), category_id=int(label.id), area=int(np.count_nonzero(mask)),
                             bbox=[int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)],
                             iscrowd=int(value < INSTANCE_OFFSET and label.hasInstances)))
    return segment_ids, segments


def match_image(gt_ids: np.ndarray, gt_segments: Sequence[dict], pred_ids: np.ndarray,
                pred_segments: Sequence[dict], where: str = 'the prediction') -> Dict[int, List[float]]:
    """The official matching on one image: ``{category id: [tp, fp, fn, summed IoU of the tp]}``.
    ``where`` names the prediction in the one-line errors (a segment of the PNG not in the JSON or
    the reverse, an unknown category, another size than the ground truth)."""
    if pred_ids.shape != gt_ids.shape:
        raise UserError(f'{where} is {pred_ids.shape[1]}x{pred_ids.shape[0]}, the ground truth '
                        f'{gt_ids.shape[1]}x{gt_ids.shape[0]}')
    gt_segms = {s['id']: s for s in gt_segments}
    pred_segms = {s['id']: dict(s) for s in pred_segments}
    gts, preds, counts = (a.tolist() for a in overlap_counts(gt_ids, pred_ids))
    overlaps = dict(zip(zip(gts, preds), counts))
    pred_areas = defaultdict(int)
    for pred, count in zip(preds, counts):
        pred_areas[pred] += count
    for value, area in pred_areas.items():
        if value not in pred_segms:
            if value == VOID:
                continue
            raise UserError(f'{where}: segment {value} is in the PNG and not in the JSON')
        pred_segms[value]['area'] = area
        if pred_segms[value]['category_id'] not in CATEGORY_IDS:
            raise UserError(f'{where}: segment {value} has the unknown category_id {pred_segms[value]["category_id"]}')
    missing = sorted(set(pred_segms) - set(pred_areas))
    if missing:
        raise UserError(f'{where}: segments {missing} are in the JSON and not in the PNG')
    stats = defaultdict(lambda: [0, 0, 0, 0.0])
    gt_matched, pred_matched = set(), set()
    for (gt, pred), intersection in overlaps.items():
        if gt not in gt_segms or pred not in pred_segms or gt_segms[gt]['iscrowd'] == 1 or \
                gt_segms[gt]['category_id'] != pred_segms[pred]['category_id']:
            continue
        union = pred_segms[pred]['area'] + gt_segms[gt]['area'] - intersection - overlaps.get((VOID, pred), 0)
        iou = intersection / union
        if iou > 0.5:
            stat = stats[gt_segms[gt]['category_id']]
            stat[0] += 1
            stat[3] += iou
            gt_matched.add(gt)
            pred_matched.add(pred)
    crowds = {}
    for gt, info in gt_segms.items():
        if gt in gt_matched:
            continue
        if info['iscrowd'] == 1:
            crowds[info['category_id']] = gt
            continue
        stats[info['category_id']][2] += 1
    for pred, info in pred_segms.items():
        if pred in pred_matched:
            continue
        intersection = overlaps.get((VOID, pred), 0)
        if info['category_id'] in crowds:
            intersection += overlaps.get((crowds[info['category_id']], pred), 0)
        if intersection / info['area'] > 0.5:
            continue
        stats[info['category_id']][1] += 1
    return dict(stats)


def evaluate(images: Sequence[Dict[int, List[float]]]) -> dict:
    """The official result of ``match_image`` results: ``All``, ``Things`` and ``Stuff`` (pq, sq,
    rq, n: the categories with a true positive, false positive or false negative) and
    ``per_class`` ({category id: pq, sq, rq}). With no such category the averages are 0 (the
    official script divides by 0)."""
    totals = defaultdict(lambda: [0, 0, 0, 0.0])
    for image in images:
        for category, stat in image.items():
            total = totals[category]
            for i in range(4):
                total[i] += stat[i]
    results = {}
    for name, isthing in (('All', None), ('Things', 1), ('Stuff', 0)):
        pq = sq = rq = n = 0
        per_class = {}
        for category in CATEGORIES:
            if isthing is not None and category['isthing'] != isthing:
                continue
            tp, fp, fn, iou = totals[category['id']]
            if tp + fp + fn == 0:
                per_class[category['id']] = dict(pq=0.0, sq=0.0, rq=0.0)
                continue
            n += 1
            scores = dict(pq=iou / (tp + 0.5 * fp + 0.5 * fn), sq=iou / tp if tp else 0,
                          rq=tp / (tp + 0.5 * fp + 0.5 * fn))
            per_class[category['id']] = scores
            pq, sq, rq = pq + scores['pq'], sq + scores['sq'], rq + scores['rq']
        results[name] = dict(pq=pq / n if n else 0.0, sq=sq / n if n else 0.0, rq=rq / n if n else 0.0, n=n)
        if name == 'All':
            results['per_class'] = per_class
    return results


def flat_metrics(result: dict) -> Dict[str, float]:
    """``evaluate``'s result as fractions keyed like the other tasks: ``PQ``, ``SQ``, ``RQ``,
    ``PQ_th`` (things), ``PQ_st`` (stuff) ..., and per class ``PQ.<name>``, ``SQ.<name>``,
    ``RQ.<name>``."""
    metrics = {}
    for group, suffix in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
        for key in ('pq', 'sq', 'rq'):
            metrics[f'{key.upper()}{suffix}'] = float(result[group][key])
    for category in CATEGORIES:
        for key in ('pq', 'sq', 'rq'):
            metrics[f'{key.upper()}.{category["name"]}'] = float(result['per_class'][category['id']][key])
    return metrics


def markdown(result: dict) -> str:
    """Per-class and averaged PQ / SQ / RQ (in %) of an ``evaluate`` result, as the official script
    prints them."""
    shown = lambda value: f'{100 * value:.1f}'  # noqa: E731
    rows = [(c['name'], *(shown(result['per_class'][c['id']][k]) for k in ('pq', 'sq', 'rq'))) for c in CATEGORIES]
    table = markdown_table(['category', 'PQ', 'SQ', 'RQ'], rows)
    rows = [(name, *(shown(result[name][k]) for k in ('pq', 'sq', 'rq')), result[name]['n'])
            for name in ('All', 'Things', 'Stuff')]
    return table + '\n' + markdown_table(['', 'PQ', 'SQ', 'RQ', 'N'], rows)


def read_panoptic_png(path: str) -> np.ndarray:
    """The segment ids of a panoptic PNG (RGB, as PIL and the official scripts read it)."""
    return rgb_to_ids(read_png(path, cv2.IMREAD_COLOR)[..., ::-1])


def write_panoptic_png(path: str, segment_ids: np.ndarray) -> None:
    with atomic_output(path) as tmp:
        cv2.imwrite(tmp, ids_to_rgb(segment_ids)[..., ::-1])


def ground_truth_paths(root: str, split: str) -> Tuple[str, str]:
    """(``gtFine/cityscapes_panoptic_<split>.json``, ``gtFine/cityscapes_panoptic_<split>/``) of a root."""
    folder = osp.join(root, files.FINE, f'cityscapes_panoptic_{split}')
    return folder + '.json', folder


def _convert_image(task: Tuple[str, str]) -> Tuple[dict, dict]:
    """(image entry, annotation entry) of an ``*_instanceIds.png``, its panoptic PNG written."""
    instance_png, folder = task
    name = osp.basename(instance_png)
    out_name = name.replace('_instanceIds.png', '_panoptic.png')
    instance_ids = read_png(instance_png)
    if instance_ids.ndim != 2:
        raise UserError(f'{instance_png}: expected a single-channel instance-id PNG')
    segment_ids, segments = ground_truth_segments(instance_ids)
    out_path = osp.join(folder, out_name)
    if not (is_up_to_date(out_path, [instance_png]) and is_complete_png(out_path)):
        write_panoptic_png(out_path, segment_ids)
    image_id = name.replace('_gtFine_instanceIds.png', '')
    image = dict(id=image_id, width=int(instance_ids.shape[1]), height=int(instance_ids.shape[0]),
                 file_name=name.replace('_instanceIds.png', '_leftImg8bit.png'))
    return image, dict(image_id=image_id, file_name=out_name, segments_info=segments)


def convert_split(root: str, split: str, nproc: int) -> str:
    """Write the panoptic ground truth of a split (``ground_truth_paths``) with convert2panoptic's
    file names, JSON content and PNG pixels (label-id categories), in parallel; the JSON last, so
    its presence means the PNGs are complete. An up-to-date JSON is kept. Returns the JSON path."""
    json_path, folder = ground_truth_paths(root, split)
    inputs = sorted(files.ground_truth_files(files.split_dir(root, split, files.FINE), 'instanceIds'))
    pngs = [osp.join(folder, osp.basename(p).replace('_instanceIds.png', '_panoptic.png')) for p in inputs]
    if is_up_to_date(json_path, inputs) and all(osp.isfile(p) for p in pngs):
        print(f'{json_path}: up to date')
        return json_path
    print(f'converting {len(inputs)} {split} instance maps to panoptic ground truth')
    results = track_parallel(_convert_image, [(p, folder) for p in inputs], nproc)
    content = dict(images=[image for image, _ in results], annotations=[ann for _, ann in results],
                   categories=CATEGORIES)
    write_text(json.dumps(content, sort_keys=True, indent=4), json_path)
    print(f'wrote {json_path} and {len(results)} PNGs in {folder}')
    return json_path


# The class indices of mmdet's panoptic models (PanopticFPN, the fusion of a Mask R-CNN and a
# semantic model): the 8 thing classes first, in mmdet's Cityscapes order, then the 11 stuff classes.
CLASS_LABEL_IDS = THING_IDS + STUFF_IDS
CLASSES = tuple(id2label[i].name for i in CLASS_LABEL_IDS)
THING_CLASSES, STUFF_CLASSES = CLASSES[:len(THING_IDS)], CLASSES[len(THING_IDS):]


def from_class_map(class_map: np.ndarray) -> Tuple[np.ndarray, List[dict]]:
    """(segment ids, segments info) of a panoptic result in mmdet's form: per pixel
    ``instance * 1000 + class index`` for a thing, the class index for stuff, ``len(CLASSES)`` for
    void. The segment id is that value (void: 0), the category its class's label id."""
    ids = class_map.astype(np.int64)
    ids[ids == len(CLASSES)] = VOID
    segments = [dict(id=int(value), category_id=int(CLASS_LABEL_IDS[value % INSTANCE_OFFSET]))
                for value in np.unique(ids).tolist() if value != VOID]
    return ids, segments
