"""Evaluator speed (``tools/analysis_tools/benchmark_eval.py``): cityscapesscripts' scripts against
the project's evaluators, whole processes as a user runs them, on generated scenes and seeded
noisy predictions; every evaluator must give the official scores."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, List, Sequence, Tuple

import cv2
import numpy as np
from mmengine.evaluator import BaseMetric

from mmcityscapes.cityscapes import files, noisy, panoptic, reference
from mmcityscapes.cityscapes.results import MASKS
from mmcityscapes.cityscapes.synthetic import generate
from mmcityscapes.common.errors import UserError
from mmcityscapes.common.io import read_label_png
from mmcityscapes.common.parallel import track_parallel
from mmcityscapes.common.tables import markdown_table

EVALUATE = [sys.executable, '-m', 'mmcityscapes.cityscapes.evaluate']  # the program of eval_cityscapes.py


def run_process(cmd: Sequence[str], cwd: str, **env) -> float:
    """Seconds one command takes in ``cwd``, start-up included (its output is kept from the terminal)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=dict(os.environ, **env), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise UserError(f'{" ".join(cmd[:3])} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}')
    return seconds


def decode_mask(path: str) -> Tuple[int, ...]:
    return cv2.imread(path, cv2.IMREAD_GRAYSCALE).shape  # the shape only: no image sent back


def decode_label(path: str) -> Tuple[int, ...]:
    return read_label_png(path).shape


def decode_panoptic(path: str) -> Tuple[int, ...]:
    return panoptic.read_panoptic_png(path).shape


def timed(func: Callable, *args) -> Tuple[Any, float]:
    start = time.perf_counter()
    value = func(*args)
    return value, time.perf_counter() - start


def eval_tool(task: str, root: str, pred_dir: str, out: str, nproc: int) -> List[str]:
    return [*EVALUATE, '--task', task, '--gt-root', files.split_dir(root, 'val', files.FINE),
            '--pred-dir', pred_dir, '--nproc', str(nproc), '--out', out]


def print_rows(rows: Sequence[tuple], t_official: float) -> None:
    print(markdown_table(['evaluation', 'processes', 'seconds', 'vs official'],
                         [(name, n, f'{t:.2f}', f'{t_official / t:.2f}x') for name, n, t in rows]))


def benchmark_semantic(root: str, pred_dir: str, scratch: str, nproc: int) -> bool:
    gt_files = files.ground_truth_files(files.split_dir(root, 'val', files.FINE), 'labelIds')
    noisy.write_label_predictions(gt_files, pred_dir)
    t_official = run_process([sys.executable, '-m', 'cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling'],
                             cwd=scratch, CITYSCAPES_DATASET=root, CITYSCAPES_RESULTS=pred_dir,
                             CITYSCAPES_EXPORT_DIR=scratch)
    ours_json = osp.join(scratch, 'ours.json')
    t_ours = run_process(eval_tool('semantic', root, pred_dir, ours_json, nproc), scratch)
    t_help = run_process([*EVALUATE, '--help'], scratch)
    decoded = sorted(glob.glob(osp.join(pred_dir, '*.png'))) + gt_files + [
        f.replace('_labelIds.png', '_instanceIds.png') for f in gt_files]
    _, t_decode = timed(track_parallel, decode_label, decoded, nproc)
    with open(osp.join(scratch, 'resultPixelLevelSemanticLabeling.json')) as f:
        official = json.load(f)
    with open(ours_json) as f:
        same = reference.same_scores(json.load(f), official)
    print_rows([('`python -m cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling`', 1, t_official),
                ('`eval_cityscapes.py --task semantic`', nproc, t_ours),
                ('`eval_cityscapes.py --help` (start-up only)', 1, t_help),
                ('decoding the prediction, labelIds and instanceIds PNGs only', nproc, t_decode)], t_official)
    print(f'class IoU {official["averageScoreClasses"]:.4f}, iIoU {official["averageScoreInstClasses"]:.4f}, '
          f'category IoU {official["averageScoreCategories"]:.4f}, '
          f'iIoU {official["averageScoreInstCategories"]:.4f}; '
          f'identical results: {same}')
    return same


def metric_samples(in_memory: dict) -> List[dict]:
    """The predictions as the data samples mmdet's metrics receive."""
    import torch
    samples = []
    for gt_path, preds in in_memory.items():
        masks, labels, scores = zip(*preds)
        samples.append(dict(
            img_path=files.image_of_annotation(gt_path),
            pred_instances=dict(masks=torch.from_numpy(np.stack(masks)),
                                scores=torch.tensor(scores, dtype=torch.float64),
                                labels=torch.tensor([noisy.THING_IDS.index(label) for label in labels]))))
    return samples


def run_metric(metric: BaseMetric, samples: Sequence[dict]) -> Tuple[float, float, float]:
    """(AP, AP50, seconds) of an mmdet-style Cityscapes metric over the samples."""
    metric.dataset_meta = dict(classes=noisy.CLASSES)
    start = time.perf_counter()
    for sample in samples:
        metric.process({}, [sample])
    result = metric.compute_metrics(metric.results)
    return result['mAP'], result.get('AP50', result.get('AP@50')), time.perf_counter() - start


def in_process_metrics(in_memory: dict, scratch: str) -> Tuple[tuple, tuple]:
    """(AP, AP50, seconds) of mmdet's CityScapesMetric and of the plugin's in-memory metric."""
    from mmdet.evaluation import CityScapesMetric
    from mmengine.logging import MMLogger

    from mmcityscapes.evaluation.cityscapes_instance_metric import CityscapesInstanceMetric
    MMLogger.get_instance('benchmark_eval', log_level='WARNING')
    samples = metric_samples(in_memory)
    ours = run_metric(CityscapesInstanceMetric(), samples)
    cwd = os.getcwd()
    os.chdir(scratch)  # in case anything lands in the current directory
    try:
        mmdet = run_metric(CityScapesMetric(outfile_prefix=osp.join(scratch, 'mmdet'), seg_prefix='unused'), samples)
    finally:
        os.chdir(cwd)
    return mmdet, ours


def benchmark_instance(root: str, pred_dir: str, scratch: str, nproc: int, n_masks: int) -> bool:
    gt_files = files.ground_truth_files(files.split_dir(root, 'val', files.FINE), 'instanceIds')
    in_memory = noisy.write_predictions(gt_files, pred_dir, n_masks)
    masks = sorted(glob.glob(osp.join(pred_dir, MASKS, '*.png')))
    print(f'{len(gt_files)} images, {len(masks) / len(gt_files):.1f} predicted masks per image')
    official_json = osp.join(scratch, 'official.json')
    t_official = run_process([sys.executable, '-m', reference.__name__, osp.join(scratch, 'gtInstances.json'),
                              official_json], scratch, CITYSCAPES_DATASET=root, CITYSCAPES_RESULTS=pred_dir)
    ours_json = osp.join(scratch, 'ours.json')
    t_ours = run_process(eval_tool('instance', root, pred_dir, ours_json, nproc), scratch)
    t_help = run_process([*EVALUATE, '--help'], scratch)
    _, t_decode = timed(track_parallel, decode_mask, masks, nproc)
    (ap_mmdet, ap50_mmdet, t_mmdet), (ap_memory, ap50_memory, t_memory) = in_process_metrics(in_memory, scratch)
    with open(official_json) as f:
        official = json.load(f)['averages']
    with open(ours_json) as f:
        ours = json.load(f)
    same = np.allclose([ours['mAP'], ours['AP50'], ap_memory, ap50_memory, ap_mmdet, ap50_mmdet],
                       [official['allAp'], official['allAp50%']] * 3, rtol=0, atol=1e-12)
    print_rows([('official `evalInstanceLevelSemanticLabeling` (JSON writer made numpy-aware)', 1, t_official),
                ('`eval_cityscapes.py --task instance`', nproc, t_ours),
                ('`eval_cityscapes.py --help` (start-up only)', 1, t_help),
                ('decoding the mask PNGs only', nproc, t_decode),
                ('mmdet `CityScapesMetric` in the test loop (writes a PNG per mask)', 1, t_mmdet),
                ('`CityscapesInstanceMetric` in the test loop (in memory)', 1, t_memory)], t_official)
    print(f'AP {official["allAp"]:.4f}, AP50 {official["allAp50%"]:.4f}; identical results: {same}; '
          f'eval_cityscapes.py: {t_ours / t_decode:.2f}x the decoding time')
    return same


def benchmark_panoptic(root: str, pred_dir: str, scratch: str, nproc: int) -> bool:
    gt_json, gt_folder = panoptic.ground_truth_paths(root, 'val')
    panoptic.convert_split(root, 'val', nproc)
    noisy.write_panoptic_predictions(gt_json, gt_folder, osp.join(pred_dir, 'cityscapes_panoptic_val.json'))
    t_official = run_process([sys.executable, '-m', 'cityscapesscripts.evaluation.evalPanopticSemanticLabeling'],
                             cwd=scratch, CITYSCAPES_DATASET=root, CITYSCAPES_RESULTS=pred_dir)
    ours_json = osp.join(scratch, 'ours.json')
    t_ours = run_process(eval_tool('panoptic', root, pred_dir, ours_json, nproc), scratch)
    t_help = run_process([*EVALUATE, '--help'], scratch)
    decoded = [*glob.glob(osp.join(gt_folder, '*.png')),
               *glob.glob(osp.join(pred_dir, 'cityscapes_panoptic_val', '*.png'))]
    _, t_decode = timed(track_parallel, decode_panoptic, decoded, nproc)
    with open(osp.join(scratch, 'resultPanopticSemanticLabeling.json')) as f:
        official = json.load(f)
    with open(ours_json) as f:
        same = reference.same_panoptic_scores(json.load(f), official)
    print_rows([('`python -m cityscapesscripts.evaluation.evalPanopticSemanticLabeling`', os.cpu_count(), t_official),
                ('`eval_cityscapes.py --task panoptic`', nproc, t_ours),
                ('`eval_cityscapes.py --help` (start-up only)', 1, t_help),
                ('decoding the ground-truth and prediction PNGs only', nproc, t_decode)], t_official)
    print(f'PQ {official["All"]["pq"]:.4f} (things {official["Things"]["pq"]:.4f}, stuff '
          f'{official["Stuff"]["pq"]:.4f}); identical results: {same}')
    return same


def benchmark_eval(task: str, images: int, masks: int, height: int, width: int, nproc: int,
                   work_dir: str = None) -> None:
    """Print the timing table of ``task`` (``semantic``/``instance``/``panoptic``) on ``images`` generated scenes;
    one line if an evaluator disagrees with the official script."""
    work_dir = work_dir or tempfile.mkdtemp(prefix='benchmark_eval_')
    root, pred_dir, scratch = (osp.join(work_dir, name) for name in ('cityscapes', 'predictions', 'scratch'))
    for folder in (pred_dir, scratch):
        os.makedirs(folder, exist_ok=True)
    generate(root, dict(train=0, val=images, test=0, train_extra=0), height, width, 0, nproc)
    if task == 'semantic':
        same = benchmark_semantic(root, pred_dir, scratch, nproc)
    elif task == 'panoptic':
        same = benchmark_panoptic(root, pred_dir, scratch, nproc)
    else:
        same = benchmark_instance(root, pred_dir, scratch, nproc, masks)
    if not same:
        raise UserError('the evaluators disagree')


