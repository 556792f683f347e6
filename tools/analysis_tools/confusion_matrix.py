"""Confusion matrix of a test run's predictions, as mmseg's and mmdet's confusion_matrix.py.

    python tools/test.py CONFIG CHECKPOINT --out predictions.pkl
    python tools/analysis_tools/confusion_matrix.py CONFIG predictions.pkl [--out-dir DIR]

Semantic configs: pixel counts over the config's classes (19x19), from the ground truth the test
pipeline loaded, which the dump keeps; ignored pixels (255) are left out. Instance configs:
mmdet's box confusion matrix with a background class, against the config's test annotations
(crowd regions left out): detections above ``--score-thr`` matched at box IoU ``--iou-thr``.
Writes ``confusion_matrix.png`` (each ground-truth row normalised to 100 %) and
``confusion_matrix.json`` (the counts and labels) into ``--out-dir`` (default: the folder of
the predictions).
"""
import argparse
import os.path as osp
import pickle

import numpy as np
from mmengine.config import DictAction
from mmengine.registry import DATASETS, init_default_scope

from mmcityscapes.cityscapes.confusion import confusion_figure, detection_confusion, semantic_confusion
from mmcityscapes.common.errors import UserError, run_tool
from mmcityscapes.common.io import check_writable, write_json
from mmcityscapes.datasets.preflight import check_dataset_files
from mmcityscapes.utils.config import load_config
from mmcityscapes.utils.tasks import model_family


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('predictions', help='the .pkl of tools/test.py --out')
    parser.add_argument('--out-dir', help='default: the folder of the predictions')
    parser.add_argument('--score-thr', type=float, default=0.3, help='instance configs: detections kept')
    parser.add_argument('--iou-thr', type=float, default=0.5, help='instance configs: box IoU of a match')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args()


def read_predictions(path):
    if not osp.isfile(path):
        raise UserError(f'missing file {path}')
    try:
        with open(path, 'rb') as f:
            predictions = pickle.load(f)
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as e:
        raise UserError(f'cannot read predictions {path}: {e} (not a tools/test.py --out file?)') from None
    if not isinstance(predictions, list) or not predictions or not isinstance(predictions[0], dict):
        raise UserError(f'{path}: not a tools/test.py --out file (a list of per-image predictions)')
    return predictions


def semantic_maps(predictions, path):
    for sample in predictions:
        if 'gt_sem_seg' not in sample or 'pred_sem_seg' not in sample:
            raise UserError(f'{path}: {sample.get("img_path")} has no ground truth or no semantic prediction '
                            '(a semantic config tested with --out?)')
        yield sample['gt_sem_seg']['data'][0].numpy(), sample['pred_sem_seg']['data'][0].numpy()


def detection_images(predictions, dataset, path):
    """Per prediction, its image's ground-truth boxes and labels (no crowd) and the detections."""
    ground_truth = {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        kept = [inst for inst in info['instances'] if not inst.get('ignore_flag', 0)]
        ground_truth[info['img_path']] = (np.array([inst['bbox'] for inst in kept], np.float64).reshape(-1, 4),
                                          np.array([inst['bbox_label'] for inst in kept], np.int64))
    for sample in predictions:
        if 'pred_instances' not in sample or sample.get('img_path') not in ground_truth:
            raise UserError(f'{path}: {sample.get("img_path")} has no instance prediction or is not in the '
                            "config's test set")
        pred = sample['pred_instances']
        yield (*ground_truth[sample['img_path']], pred['bboxes'].numpy().astype(np.float64),
               pred['labels'].numpy(), pred['scores'].numpy())


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    check_dataset_files(cfg, ('test',))
    predictions = read_predictions(args.predictions)
    init_default_scope(cfg.get('default_scope'))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    classes = list(dataset.metainfo['classes'])
    if model_family(cfg) != 'semantic':
        matrix = detection_confusion(detection_images(predictions, dataset, args.predictions), len(classes),
                                     args.score_thr, args.iou_thr)
        labels, what = classes + ['background'], f'boxes, score >= {args.score_thr}, IoU >= {args.iou_thr}'
    else:
        matrix = semantic_confusion(semantic_maps(predictions, args.predictions), len(classes))
        labels, what = classes, 'pixels'
    out_dir = args.out_dir or osp.dirname(osp.abspath(args.predictions))
    check_writable(out_dir, '--out-dir')
    title = f'{osp.basename(args.config)}: {len(predictions)} images ({what})'
    confusion_figure(matrix, labels, osp.join(out_dir, 'confusion_matrix.png'), title)
    write_json(dict(labels=labels, counts=matrix.tolist(), rows='ground truth', columns='prediction', what=what),
               osp.join(out_dir, 'confusion_matrix.json'), indent=1)
    print(f'{title}: wrote {out_dir}/confusion_matrix.png and confusion_matrix.json')


if __name__ == '__main__':
    run_tool(main)
