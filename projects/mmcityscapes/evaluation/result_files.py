"""The official Cityscapes evaluations on prediction files in the official result format.

Semantic: for each ``<city>_<seq>_<frame>_gtFine_labelIds.png`` under the ground-truth folder,
the prediction ``<city>_<seq>_<frame>*.png`` anywhere under the prediction folder holds label ids
(not train ids); the result is cityscapesscripts' evalPixelLevelSemanticLabeling's
(``cityscapes_semantic``).

Instance: for each ``<city>_<seq>_<frame>*_gtFine_instanceIds.png``, the prediction file
``<city>_<seq>_<frame>*.txt`` lists ``<relative mask png> <label id> <confidence>`` per instance,
as for the test server; the result is evalInstanceLevelSemanticLabeling's
(``cityscapes_instance``). Both run one image per task in parallel; decoding the PNGs is most of
the time. Every bad file stops with a ``DatasetError`` naming it.
"""
import fnmatch
import glob
import math
import os
import os.path as osp

import cv2
from cityscapesscripts.helpers.labels import id2label

from ..utils.io import DatasetError, read_label_png, read_png
from ..utils.parallel import track_parallel
from . import cityscapes_instance, cityscapes_semantic


def prediction_files(pred_dir, ext):
    """``{file name: path}`` of every ``*.<ext>`` under ``pred_dir``."""
    if not osp.isdir(pred_dir):
        raise DatasetError(f'no prediction folder {pred_dir}')
    found = {}
    for root, _, files in os.walk(pred_dir):
        for name in fnmatch.filter(files, f'*.{ext}'):
            found[name] = osp.join(root, name)
    return found


def find_prediction(gt_path, predictions, ext):
    """The one ``<city>_<seq>_<frame>*.<ext>`` prediction of a ground-truth file, as the official
    scripts look it up."""
    city, seq, frame = osp.basename(gt_path).split('_')[:3]
    matches = fnmatch.filter(predictions, f'{city}_{seq}_{frame}*.{ext}')
    if len(matches) != 1:
        raise DatasetError(f'{"no" if not matches else "several"} prediction files for {gt_path} '
                           f'(expected one {city}_{seq}_{frame}*.{ext})')
    return predictions[matches[0]]


def ground_truth(gt_root, suffix):
    files = sorted(glob.glob(osp.join(gt_root, '*', f'*_gtFine_{suffix}.png')))
    if not files:
        raise DatasetError(f'no *_gtFine_{suffix}.png under {gt_root}')
    return files


def read_instance_predictions(txt_path, shape):
    """(mask, label id, confidence) per line of an official instance prediction file, checked:
    a Cityscapes label id, a finite confidence, a mask PNG of the ground truth's ``shape``."""
    with open(txt_path) as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            where = f'{txt_path}:{number}'
            if len(fields) != 3:
                raise DatasetError(f'{where}: expected "<mask png> <label id> <confidence>", got "{line.strip()}"')
            try:
                label_id, score = int(fields[1]), float(fields[2])
            except ValueError:
                raise DatasetError(f'{where}: expected an integer label id and a numeric confidence, got '
                                   f'"{fields[1]}" and "{fields[2]}"') from None
            if label_id not in id2label or label_id < 0:
                raise DatasetError(f'{where}: {label_id} is not a Cityscapes label id')
            if not math.isfinite(score):
                raise DatasetError(f'{where}: confidence {fields[2]} is not a finite number')
            mask_path = osp.join(osp.dirname(txt_path), fields[0])
            mask = read_png(mask_path, cv2.IMREAD_GRAYSCALE) != 0
            if mask.shape != shape:
                raise DatasetError(f'{where}: mask {mask_path} is {mask.shape[1]}x{mask.shape[0]}, the ground '
                                   f'truth {shape[1]}x{shape[0]}')
            yield mask, label_id, score


def _match_task(task):
    gt_path, txt_path = task
    gt_ids = read_label_png(gt_path)
    return cityscapes_instance.match_image(gt_ids, read_instance_predictions(txt_path, gt_ids.shape))


def evaluate_instances(gt_root, pred_dir, nproc):
    """(official instance result, number of images) of the prediction files under ``pred_dir``."""
    predictions = prediction_files(pred_dir, 'txt')
    tasks = [(gt, find_prediction(gt, predictions, 'txt')) for gt in ground_truth(gt_root, 'instanceIds')]
    return cityscapes_instance.evaluate(track_parallel(_match_task, tasks, nproc)), len(tasks)


def _count_task(task):
    gt_path, pred_path = task
    try:
        return cityscapes_semantic.count_image(read_label_png(pred_path), read_label_png(gt_path),
                                               read_label_png(gt_path.replace('_labelIds.png', '_instanceIds.png')))
    except cityscapes_semantic.LabelError as e:
        raise DatasetError(f'{pred_path}: {e}') from None


def evaluate_semantic(gt_root, pred_dir, nproc):
    """(official pixel-level result, number of images) of the label-id PNGs under ``pred_dir``."""
    predictions = prediction_files(pred_dir, 'png')
    tasks = [(gt, find_prediction(gt, predictions, 'png')) for gt in ground_truth(gt_root, 'labelIds')]
    return cityscapes_semantic.evaluate(track_parallel(_count_task, tasks, nproc)), len(tasks)
