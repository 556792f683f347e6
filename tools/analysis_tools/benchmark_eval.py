"""Time Cityscapes evaluation: cityscapesscripts' evaluators against this project's.

    python tools/analysis_tools/benchmark_eval.py --task instance --images 100 --masks 57 --nproc 2
    python tools/analysis_tools/benchmark_eval.py --task semantic --images 100 --nproc 2

Generates ``--images`` val scenes at 1024x2048 (tools/misc/synthetic_cityscapes.py) and noisy
predictions of them in the official result format.

Semantic task: label-id PNGs with shifted borders, swapped classes and blobs of wrong labels.
Times cityscapesscripts' evalPixelLevelSemanticLabeling (one process; without its optional Cython
module, which its pip package does not ship), decoding the prediction and ground-truth PNGs with
``--nproc`` processes, and eval_cityscapes.py with ``--nproc`` processes; checks that the two
evaluators give the same scores.

Instance task: predictions of the instances, padded with false positives to ``--masks`` per
image. Times, on the same predictions:

1. cityscapesscripts' evalInstanceLevelSemanticLabeling (it has no parallel mode);
2. decoding every mask PNG with ``--nproc`` processes: the floor of any file-based evaluator;
3. tools/analysis_tools/eval_cityscapes.py with ``--nproc`` processes;
4. mmdet's CityScapesMetric, fed the predictions as model outputs (one process);
5. the in-memory CityscapesInstanceMetric of ``tools/test.py`` (one process, no files);

and checks that 1, 3, 4 and 5 give the same AP.
"""
import argparse
import glob
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import eval_cityscapes  # noqa: E402

from cityscapesscripts.helpers.labels import labels, name2label  # noqa: E402

from projects.mmcityscapes.evaluation import CityscapesInstanceMetric  # noqa: E402
from projects.mmcityscapes.evaluation.cityscapes_instance import INSTANCE_LABELS  # noqa: E402
from projects.mmcityscapes.utils.io import read_label_png  # noqa: E402
from projects.mmcityscapes.utils.parallel import track_parallel  # noqa: E402

CLASSES = tuple(INSTANCE_LABELS)  # the 8 evaluated classes
THING_IDS = [name2label[name].id for name in CLASSES]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--task', choices=['semantic', 'instance'], default='instance')
    parser.add_argument('--images', type=int, default=100)
    parser.add_argument('--masks', type=int, default=57, help='predicted masks per image')
    parser.add_argument('--height', type=int, default=1024)
    parser.add_argument('--width', type=int, default=2048)
    parser.add_argument('--nproc', type=int, default=os.cpu_count())
    parser.add_argument('--work-dir', help='keep the generated files here (default: a temporary folder)')
    return parser.parse_args()


def noisy_predictions(gt, rng, n_masks=0):
    """Detections of a ground-truth instance map: misses, shifted borders, wrong labels,
    duplicates, false positives (at least ``n_masks`` in all), a hit on the void ego vehicle
    and an empty mask."""
    kernel = np.ones((3, 3), np.uint8)
    preds = []
    for inst in np.unique(gt):
        label = inst // 1000 if inst >= 1000 else inst
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


def write_predictions(gt_files, pred_dir, n_masks, seed=0):
    """Official-format prediction files; returns {gt file: predictions} for the in-memory path."""
    rng = np.random.default_rng(seed)
    in_memory = {}
    for gt_path in gt_files:
        stem = osp.basename(gt_path)[:-len('_gtFine_instanceIds.png')]
        preds = noisy_predictions(cv2.imread(gt_path, cv2.IMREAD_UNCHANGED), rng, n_masks)
        lines = []
        for i, (mask, label, score) in enumerate(preds):
            cv2.imwrite(osp.join(pred_dir, f'{stem}_{i}.png'), mask.astype(np.uint8) * 255)
            lines.append(f'{stem}_{i}.png {label} {score!r}\n')
        with open(osp.join(pred_dir, f'{stem}_pred.txt'), 'w') as f:
            f.writelines(lines)
        in_memory[gt_path] = preds
    return in_memory


def official(gt_files, pred_dir, scratch):
    """cityscapesscripts' evaluator (its JSON writer, which fails on numpy ints and writes
    matches.json into the cwd, is switched off)."""
    import cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling as cs
    cs.writeDict2JSON = lambda *_: None
    args = cs.args
    args.gtInstancesFile = osp.join(scratch, 'gtInstances.json')
    args.predictionPath, args.predictionWalk = osp.abspath(pred_dir), None
    args.quiet, args.JSONOutput = True, False
    averages = cs.evaluateImgLists([cs.getPrediction(gt, args) for gt in gt_files], gt_files, args)['averages']
    return averages['allAp'], averages['allAp50%']


def noisy_labels(gt, rng):
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


def write_label_predictions(gt_files, pred_dir, seed=0):
    """``<stem>_pred.png`` label-id predictions of ground-truth ``*_gtFine_labelIds.png`` files."""
    rng = np.random.default_rng(seed)
    for gt_path in gt_files:
        stem = osp.basename(gt_path)[:-len('_gtFine_labelIds.png')]
        cv2.imwrite(osp.join(pred_dir, f'{stem}_pred.png'), noisy_labels(cv2.imread(gt_path, cv2.IMREAD_UNCHANGED), rng))


def official_semantic(gt_files, pred_dir):
    """cityscapesscripts' evalPixelLevelSemanticLabeling, quiet and without its JSON file."""
    import copy

    import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as cs
    args = copy.copy(cs.args)
    args.predictionPath, args.predictionWalk = osp.abspath(pred_dir), None
    args.quiet, args.JSONOutput = True, False
    return cs.evaluateImgLists([cs.getPrediction(args, gt) for gt in gt_files], gt_files, args)


def decode_label(path):
    return read_label_png(path).shape


def decode(path):
    return cv2.imread(path, cv2.IMREAD_GRAYSCALE) is not None


def metric_samples(in_memory):
    """The predictions as the data samples mmdet's metrics receive."""
    samples = []
    for gt_path, preds in in_memory.items():
        masks, labels, scores = zip(*preds)
        samples.append(dict(
            img_path=gt_path.replace('/gtFine/', '/leftImg8bit/').replace('_gtFine_instanceIds.png', '_leftImg8bit.png'),
            pred_instances=dict(masks=torch.from_numpy(np.stack(masks)), scores=torch.tensor(scores, dtype=torch.float64),
                                labels=torch.tensor([THING_IDS.index(label) for label in labels]))))
    return samples


def run_metric(metric, samples):
    """(AP, AP50, seconds) of an mmdet-style Cityscapes metric over the samples."""
    metric.dataset_meta = dict(classes=CLASSES)
    start = time.time()
    for sample in samples:
        metric.process({}, [sample])
    result = metric.compute_metrics(metric.results)
    return result['mAP'], result.get('AP50', result.get('AP@50')), time.time() - start


def mmdet_metric(samples, scratch):
    """mmdet's CityScapesMetric: one PNG per mask, then its port of the official evaluator."""
    from mmdet.evaluation import CityScapesMetric
    from mmengine.logging import MMLogger
    MMLogger.get_instance('benchmark_eval', log_level='WARNING')
    cwd = os.getcwd()
    os.chdir(scratch)  # in case anything lands in the current directory
    try:
        return run_metric(CityScapesMetric(outfile_prefix=osp.join(scratch, 'mmdet'), seg_prefix='unused'), samples)
    finally:
        os.chdir(cwd)


def timed(func, *args):
    start = time.time()
    value = func(*args)
    return value, time.time() - start


def same_scores(ours, official):
    keys = ('classScores', 'classInstScores', 'categoryScores', 'categoryInstScores')
    flat = lambda r: [v for k in keys for v in r[k].values()]  # noqa: E731
    return ours['confMatrix'] == official['confMatrix'] and np.allclose(
        flat(ours), flat(official), rtol=0, atol=1e-12, equal_nan=True)


def benchmark_semantic(root, pred_dir, nproc):
    gt_files = sorted(glob.glob(osp.join(root, 'gtFine', 'val', '*', '*_gtFine_labelIds.png')))
    write_label_predictions(gt_files, pred_dir)
    files = sorted(glob.glob(osp.join(pred_dir, '*.png'))) + gt_files + [
        f.replace('_labelIds.png', '_instanceIds.png') for f in gt_files]
    reference, t_official = timed(official_semantic, gt_files, pred_dir)
    _, t_decode = timed(track_parallel, decode_label, files, nproc)
    (ours, _), t_ours = timed(eval_cityscapes.evaluate_semantic, osp.join(root, 'gtFine', 'val'), pred_dir, nproc)
    same = same_scores(ours, reference)
    print(f'| evaluation | processes | seconds | vs official |\n| --- | ---: | ---: | ---: |\n'
          f'| cityscapesscripts evalPixelLevelSemanticLabeling | 1 | {t_official:.1f} | 1.0x |\n'
          f'| decoding the prediction and ground-truth PNGs only | {nproc} | {t_decode:.1f} | '
          f'{t_official / t_decode:.1f}x |\n'
          f'| eval_cityscapes.py --task semantic | {nproc} | {t_ours:.1f} | {t_official / t_ours:.1f}x |')
    print(f'class IoU {reference["averageScoreClasses"]:.4f}, iIoU {reference["averageScoreInstClasses"]:.4f}, '
          f'category IoU {reference["averageScoreCategories"]:.4f}, iIoU {reference["averageScoreInstCategories"]:.4f}; '
          f'identical results: {same}')
    return same


def main():
    args = parse_args()
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='benchmark_eval_')
    root, pred_dir = osp.join(work_dir, 'cityscapes'), osp.join(work_dir, 'predictions')
    os.makedirs(pred_dir, exist_ok=True)
    subprocess.run([sys.executable, osp.join(REPO, 'tools/misc/synthetic_cityscapes.py'), root, '--train', '0',
                    '--val', str(args.images), '--test', '0', '--extra', '0', '--height', str(args.height),
                    '--width', str(args.width), '--nproc', str(args.nproc)], check=True)
    if args.task == 'semantic':
        if not benchmark_semantic(root, pred_dir, args.nproc):
            sys.exit('error: the evaluators disagree')
        return
    gt_files = sorted(glob.glob(osp.join(root, 'gtFine', 'val', '*', '*_gtFine_instanceIds.png')))
    in_memory = write_predictions(gt_files, pred_dir, args.masks)
    masks = sorted(glob.glob(osp.join(pred_dir, '*.png')))
    print(f'{len(gt_files)} images of {args.width}x{args.height}, {len(masks) / len(gt_files):.1f} masks per image')

    (ap_official, ap50_official), t_official = timed(official, gt_files, pred_dir, work_dir)
    _, t_decode = timed(track_parallel, decode, masks, args.nproc)
    (ours, _), t_ours = timed(eval_cityscapes.evaluate_instances, osp.join(root, 'gtFine', 'val'), pred_dir, args.nproc)
    samples = metric_samples(in_memory)
    ap_memory, ap50_memory, t_memory = run_metric(CityscapesInstanceMetric(), samples)
    ap_mmdet, ap50_mmdet, t_mmdet = mmdet_metric(samples, work_dir)
    same = np.allclose([ours['mAP'], ours['AP50'], ap_memory, ap50_memory, ap_mmdet, ap50_mmdet],
                       [ap_official, ap50_official] * 3, rtol=0, atol=1e-12)
    print(f'| evaluation | processes | seconds | vs official |\n| --- | ---: | ---: | ---: |\n'
          f'| cityscapesscripts evalInstanceLevelSemanticLabeling | 1 | {t_official:.1f} | 1.0x |\n'
          f'| decoding the mask PNGs only | {args.nproc} | {t_decode:.1f} | {t_official / t_decode:.1f}x |\n'
          f'| eval_cityscapes.py (files) | {args.nproc} | {t_ours:.1f} | {t_official / t_ours:.1f}x |\n'
          f'| mmdet CityScapesMetric (writes a PNG per mask) | 1 | {t_mmdet:.1f} | {t_official / t_mmdet:.1f}x |\n'
          f'| CityscapesInstanceMetric (in memory) | 1 | {t_memory:.1f} | {t_official / t_memory:.1f}x |')
    print(f'in memory vs mmdet CityScapesMetric: {t_mmdet / t_memory:.1f}x faster')
    print(f'AP {ap_official:.4f}, AP50 {ap50_official:.4f}; identical results: {same}; '
          f'files: {t_ours / t_decode:.2f}x the decoding time')
    if not same:
        sys.exit('error: the evaluators disagree')


if __name__ == '__main__':
    main()
