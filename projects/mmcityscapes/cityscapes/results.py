"""The Cityscapes test server's result formats, written and read here, and the official
evaluations on files in them.

Semantic: one label-id PNG (label ids, not train ids) per image, named ``<frame>*.png``
(``write_semantic_result``). For each ``<frame>_gtFine_labelIds.png`` under the ground-truth
folder, the one prediction ``<frame>*.png`` anywhere under the prediction folder is scored as
cityscapesscripts' evalPixelLevelSemanticLabeling scores it (``semantic_eval``).

Instance: per image, ``<name>_pred.txt`` lists ``masks/<name>_<i>.png <label id> <confidence>``,
one line per instance, mask paths relative to the text file (``write_instance_result``). For each
``<frame>*_gtFine_instanceIds.png``, the one ``<frame>*.txt`` is scored as
evalInstanceLevelSemanticLabeling scores it (``instance_eval``). Both evaluations run one image
per task in parallel; decoding the PNGs is most of the time. Every bad file stops with a
``UserError`` naming it.
"""
import fnmatch
import math
import os
import os.path as osp
from typing import Dict, Iterable, Iterator, List, Tuple

import cv2
import numpy as np
from cityscapesscripts.helpers.labels import id2label

from mmcityscapes.cityscapes import files, instance_eval, panoptic, semantic_eval
from mmcityscapes.cityscapes.labels import NUM_TRAIN_IDS, looks_like_train_ids
from mmcityscapes.common.errors import UserError
from mmcityscapes.common.io import atomic_output, read_json, read_label_png, read_png, write_json, write_lines
from mmcityscapes.common.parallel import track_parallel

MASKS = 'masks'  # the instance masks' folder, beside the text files


def write_semantic_result(results_dir: str, name: str, label_ids: np.ndarray) -> None:
    """``<results_dir>/<name>.png``: an image's prediction as a label-id PNG (uint8 array)."""
    with atomic_output(osp.join(results_dir, f'{name}.png')) as tmp:
        cv2.imwrite(tmp, label_ids)


def write_instance_result(results_dir: str, name: str, instances: Iterable[Tuple[np.ndarray, int, float]]) -> None:
    """``<results_dir>/<name>_pred.txt`` and its ``masks/<name>_<i>.png`` of an image's
    ``(boolean mask, label id, confidence)`` instances; the text file is written last."""
    lines = []
    for i, (mask, label_id, score) in enumerate(instances):
        mask_name = f'{MASKS}/{name}_{i}.png'
        with atomic_output(osp.join(results_dir, mask_name)) as tmp:
            cv2.imwrite(tmp, mask.astype(np.uint8) * 255)
        lines.append(f'{mask_name} {label_id} {score!r}')
    write_lines(lines, osp.join(results_dir, f'{name}_pred.txt'))


def write_panoptic_result(results_dir: str, split: str, name: str, segment_ids: np.ndarray,
                          segments: List[dict]) -> dict:
    """``<results_dir>/cityscapes_panoptic_<split>/<name>_panoptic.png`` of an image's segment ids;
    returns its annotation for the split's JSON (``write_panoptic_json``): the image id is the frame."""
    file_name = f'{name}_panoptic.png'
    panoptic.write_panoptic_png(osp.join(results_dir, f'cityscapes_panoptic_{split}', file_name), segment_ids)
    return dict(image_id=files.frame(name), file_name=file_name, segments_info=segments)


def write_panoptic_json(results_dir: str, split: str, annotations: List[dict]) -> None:
    """``<results_dir>/cityscapes_panoptic_<split>.json``: the split's panoptic predictions, as the
    official evaluation and the test server read them, with the categories."""
    write_json(dict(annotations=annotations, categories=panoptic.CATEGORIES),
               osp.join(results_dir, f'cityscapes_panoptic_{split}.json'))


def prediction_files(pred_dir: str, ext: str) -> Dict[str, str]:
    """``{file name: path}`` of every ``*.<ext>`` under ``pred_dir``."""
    if not osp.isdir(pred_dir):
        raise UserError(f'no prediction folder {pred_dir}')
    found = {}
    for root, _, names in os.walk(pred_dir):
        for name in fnmatch.filter(names, f'*.{ext}'):
            found[name] = osp.join(root, name)
    return found


def find_prediction(gt_path: str, predictions: Dict[str, str], ext: str) -> str:
    """The one ``<frame>*.<ext>`` prediction of a ground-truth file, as the official
    scripts look it up."""
    frame = files.frame(gt_path)
    matches = fnmatch.filter(predictions, f'{frame}*.{ext}')
    if len(matches) != 1:
        raise UserError(f'{"no" if not matches else "several"} prediction files for {gt_path} '
                        f'(expected one {frame}*.{ext})')
    return predictions[matches[0]]


def ground_truth(gt_root: str, suffix: str) -> List[str]:
    found = files.ground_truth_files(gt_root, suffix)
    if not found:
        raise UserError(f'no {files.annotation_name("*", suffix + ".png")} under {gt_root}')
    return found


def read_instance_predictions(txt_path: str, shape: Tuple[int, int]) -> Iterator[Tuple[np.ndarray, int, float]]:
    """(mask, label id, confidence) per line of an official instance prediction file, checked:
    a Cityscapes label id, a finite confidence, a mask PNG of the ground truth's ``shape``."""
    with open(txt_path) as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            where = f'{txt_path}:{number}'
            if len(fields) != 3:
                raise UserError(f'{where}: expected "<mask png> <label id> <confidence>", got "{line.strip()}"')
            try:
                label_id, score = int(fields[1]), float(fields[2])
            except ValueError:
                raise UserError(f'{where}: expected an integer label id and a numeric confidence, got '
                                f'"{fields[1]}" and "{fields[2]}"') from None
            if label_id not in id2label or label_id < 0:
                raise UserError(f'{where}: {label_id} is not a Cityscapes label id')
            if not math.isfinite(score):
                raise UserError(f'{where}: confidence {fields[2]} is not a finite number')
            mask_path = osp.join(osp.dirname(txt_path), fields[0])
            mask = read_png(mask_path, cv2.IMREAD_GRAYSCALE) != 0
            if mask.shape != shape:
                raise UserError(f'{where}: mask {mask_path} is {mask.shape[1]}x{mask.shape[0]}, the ground '
                                f'truth {shape[1]}x{shape[0]}')
            yield mask, label_id, score


def _match_task(task: Tuple[str, str]) -> dict:
    gt_path, txt_path = task
    gt_ids = read_label_png(gt_path)
    return instance_eval.match_image(gt_ids, read_instance_predictions(txt_path, gt_ids.shape))


def evaluate_instances(gt_root: str, pred_dir: str, nproc: int) -> Tuple[Dict[str, float], int]:
    """(official instance result, number of images) of the prediction files under ``pred_dir``."""
    predictions = prediction_files(pred_dir, 'txt')
    tasks = [(gt, find_prediction(gt, predictions, 'txt')) for gt in ground_truth(gt_root, 'instanceIds')]
    return instance_eval.evaluate(track_parallel(_match_task, tasks, nproc)), len(tasks)


def _count_task(task: Tuple[str, str, bool]) -> dict:
    gt_path, pred_path, allow_train_ids = task
    pred, gt = read_label_png(pred_path), read_label_png(gt_path)
    if not allow_train_ids and looks_like_train_ids(pred):
        raise UserError(f'{pred_path} looks like train ids (values only in 0..{NUM_TRAIN_IDS - 1}, most pixels on '
                        'label ids that are void): the test server wants label ids, as tools/infer.py writes them; '
                        '--allow-trainid-like evaluates it anyway')
    try:
        return semantic_eval.count_image(pred, gt, read_label_png(gt_path.replace('_labelIds.png', '_instanceIds.png')))
    except UserError as e:
        raise UserError(f'{pred_path}: {e}') from None


def evaluate_semantic(gt_root: str, pred_dir: str, nproc: int, allow_train_ids: bool = False) -> Tuple[dict, int]:
    """(official pixel-level result, number of images) of the label-id PNGs under ``pred_dir``;
    a prediction that looks like train ids (the most common submission mistake, which scores 0
    without a word) stops the evaluation unless ``allow_train_ids``."""
    predictions = prediction_files(pred_dir, 'png')
    tasks = [(gt, find_prediction(gt, predictions, 'png'), allow_train_ids) for gt in ground_truth(gt_root, 'labelIds')]
    return semantic_eval.evaluate(track_parallel(_count_task, tasks, nproc)), len(tasks)


def _panoptic_task(task: Tuple[str, list, str, list]) -> dict:
    gt_png, gt_segments, pred_png, pred_segments = task
    gt_ids = panoptic.read_panoptic_png(gt_png)
    return panoptic.match_image(gt_ids, gt_segments, panoptic.read_panoptic_png(pred_png), pred_segments, pred_png)


def evaluate_panoptic(gt_root: str, pred_dir: str, nproc: int) -> Tuple[dict, int]:
    """(official panoptic result, number of images) of the predictions in the layout of the
    official script: ``<pred_dir>/cityscapes_panoptic_<split>.json`` and its PNG folder beside it,
    against ``gtFine/cityscapes_panoptic_<split>.json`` of the split ``gt_root`` names
    (``gtFine/<split>``). A ground-truth image without a prediction, or a prediction file that does
    not match its JSON, stops with one line naming it."""
    split = osp.basename(osp.normpath(gt_root))
    gt_json, gt_folder = panoptic.ground_truth_paths(osp.dirname(osp.dirname(osp.normpath(gt_root))), split)
    pred_json = osp.join(pred_dir, f'cityscapes_panoptic_{split}.json')
    pred_folder = osp.join(pred_dir, f'cityscapes_panoptic_{split}')
    for path, what in ((gt_json, 'ground truth'), (pred_json, 'prediction')):
        if not osp.isfile(path):
            hint = 'tools/dataset_converters/cityscapes.py writes it' if what == 'ground truth' else \
                'tools/infer.py writes it for a panoptic config'
            raise UserError(f'no panoptic {what} {path} ({hint})')
    predictions = {}
    for annotation in read_json(pred_json).get('annotations', []):
        predictions[annotation['image_id']] = annotation
    tasks = []
    for annotation in read_json(gt_json)['annotations']:
        prediction = predictions.get(annotation['image_id'])
        if prediction is None:
            raise UserError(f'{pred_json} has no prediction for {annotation["image_id"]}')
        tasks.append((osp.join(gt_folder, annotation['file_name']), annotation['segments_info'],
                      osp.join(pred_folder, prediction['file_name']), prediction['segments_info']))
    return panoptic.evaluate(track_parallel(_panoptic_task, tasks, nproc)), len(tasks)
