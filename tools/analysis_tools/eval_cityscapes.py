"""Evaluate predictions in the official Cityscapes result format, fast.

    python tools/analysis_tools/eval_cityscapes.py --task semantic|instance \
        --gt-root data/cityscapes/gtFine/val --pred-dir results/ --nproc 8 --out result.json

Semantic task: for each ``<city>_<seq>_<frame>_gtFine_labelIds.png`` under ``--gt-root``, the
prediction ``<city>_<seq>_<frame>*.png`` anywhere under ``--pred-dir`` holds label ids (not train
ids). The result is cityscapesscripts' evalPixelLevelSemanticLabeling's (class and category IoU and
iIoU; ``--out`` writes its result dictionary), from projects/mmcityscapes/evaluation/cityscapes_semantic.py.

Instance task: for each ``<city>_<seq>_<frame>*_gtFine_instanceIds.png`` under ``--gt-root``,
the prediction file ``<city>_<seq>_<frame>*.txt`` anywhere under ``--pred-dir`` lists
``<relative mask png> <label id> <confidence>`` per instance, as for the test server. The
numbers are those of cityscapesscripts' evalInstanceLevelSemanticLabeling (AP over 0.5:0.95
and AP50, per class and mean), computed by projects/mmcityscapes/evaluation/cityscapes_instance.py
in parallel, one image per task; decoding the mask PNGs is most of the remaining time.
"""
import argparse
import fnmatch
import glob
import math
import os
import os.path as osp
import sys
import time

import cv2
from cityscapesscripts.helpers.labels import id2label

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from projects.mmcityscapes.evaluation import cityscapes_semantic  # noqa: E402
from projects.mmcityscapes.evaluation.cityscapes_instance import (  # noqa: E402
    INSTANCE_LABELS, evaluate, match_image)
from projects.mmcityscapes.utils.io import DatasetError, read_label_png, read_png, write_json  # noqa: E402
from projects.mmcityscapes.utils.parallel import track_parallel  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--task', choices=['semantic', 'instance'], required=True)
    parser.add_argument('--gt-root', required=True, help='e.g. data/cityscapes/gtFine/val')
    parser.add_argument('--pred-dir', required=True, help='folder of the prediction files')
    parser.add_argument('--nproc', type=int, default=os.cpu_count())
    parser.add_argument('--out', help='write the results as JSON')
    return parser.parse_args()


def prediction_files(pred_dir, ext):
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


def read_predictions(txt_path, shape):
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


def match_task(task):
    gt_path, txt_path = task
    gt_ids = read_png(gt_path)
    return match_image(gt_ids, read_predictions(txt_path, gt_ids.shape))


def evaluate_instances(gt_root, pred_dir, nproc):
    predictions = prediction_files(pred_dir, 'txt')
    tasks = [(gt, find_prediction(gt, predictions, 'txt')) for gt in ground_truth(gt_root, 'instanceIds')]
    return evaluate(track_parallel(match_task, tasks, nproc)), len(tasks)


def count_task(task):
    gt_path, pred_path = task
    try:
        return cityscapes_semantic.count_image(read_label_png(pred_path), read_label_png(gt_path),
                                               read_label_png(gt_path.replace('_labelIds.png', '_instanceIds.png')))
    except cityscapes_semantic.LabelError as e:
        raise DatasetError(f'{pred_path}: {e}') from None


def evaluate_semantic(gt_root, pred_dir, nproc):
    predictions = prediction_files(pred_dir, 'png')
    tasks = [(gt, find_prediction(gt, predictions, 'png')) for gt in ground_truth(gt_root, 'labelIds')]
    return cityscapes_semantic.evaluate(track_parallel(count_task, tasks, nproc)), len(tasks)


def instance_table(result):
    lines = ['| class | AP | AP50 |', '| --- | ---: | ---: |']
    lines += [f'| {name} | {100 * result[f"AP.{name}"]:.1f} | {100 * result[f"AP50.{name}"]:.1f} |'
              for name in INSTANCE_LABELS]
    lines.append(f'| **mean** | {100 * result["mAP"]:.1f} | {100 * result["AP50"]:.1f} |')
    return '\n'.join(lines)


def main():
    args = parse_args()
    start = time.time()
    try:
        if args.task == 'semantic':
            result, n = evaluate_semantic(args.gt_root, args.pred_dir, args.nproc)
        else:
            result, n = evaluate_instances(args.gt_root, args.pred_dir, args.nproc)
    except DatasetError as e:
        sys.exit(f'error: {e}')
    print(cityscapes_semantic.markdown(result) if args.task == 'semantic' else instance_table(result))
    print(f'{n} images in {time.time() - start:.1f} s with {args.nproc} processes')
    if args.out:
        write_json(result, args.out, indent=2)


if __name__ == '__main__':
    main()
