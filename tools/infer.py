"""Predict images with a trained model: overlays, plus the official Cityscapes result format.

    python tools/infer.py configs/deeplabv3_r50.py work_dirs/deeplabv3_r50/iter_80000.pth \
        data/cityscapes/leftImg8bit/test --out results/deeplabv3_r50

``IMAGES`` are image files or folders (searched recursively for ``*.png``/``*.jpg``); their
names must differ (Cityscapes names do). Writes

* ``OUT/overlays/<name>.png``: image | ground truth | prediction, or image | prediction when the
  image has no ground truth beside it in the official layout (``gtFine/<split>/<city>/``);
* ``OUT/results/``: the test server's format, which tools/analysis_tools/eval_cityscapes.py
  evaluates: per image a label-id PNG (semantic models), or ``<name>_pred.txt`` listing
  ``masks/<name>_<i>.png <label id> <score>`` per instance (instance models).

Predictions come from mmdet's ``DetInferencer`` / mmseg's ``MMSegInferencer`` (the config's test
pipeline, ``--batch-size`` images per forward pass); this tool adds the ground-truth panel and the
test server's format. An image that cannot be read is skipped and named; the run predicts the
others and ends with a summary (exit status 2). CHECKPOINT may be an export of
tools/deployment/export.py (its directory), which onnxruntime runs inside the same pipeline.
"""
import argparse
import copy
import os
import os.path as osp
import sys

import cv2
import mmcv
import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.structures import InstanceData, PixelData
from mmengine.utils import ProgressBar

from mmcityscapes.cityscapes.errors import UserError, run_tool
from mmcityscapes.cityscapes.files import official_ground_truth
from mmcityscapes.cityscapes.io import read_label_png, remove_stale_temporaries
from mmcityscapes.cityscapes.labels import class_indices, is_instance, label_id, label_ids_of
from mmcityscapes.cityscapes.results import write_instance_result, write_semantic_result
from mmcityscapes.deployment.manifest import is_export
from mmcityscapes.deployment.onnx_models import exported_model
from mmcityscapes.utils.checkpoint import check_fits, load_weights
from mmcityscapes.utils.config import load_config, model_family, test_metainfo
from mmcityscapes.visualization import quiet_visualizer, write_overlay

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='checkpoint file, or an export directory (tools/deployment/export.py)')
    parser.add_argument('images', nargs='+', help='image files or folders')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--batch-size', type=int, default=4,
                        help='images per forward pass (consecutive images of one size)')
    parser.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    args = parser.parse_args()
    if args.batch_size < 1:
        parser.error(f'--batch-size must be at least 1, not {args.batch_size}')
    return args


def list_images(inputs):
    images = []
    for item in inputs:
        if osp.isdir(item):
            images += sorted(osp.join(root, name) for root, _, names in os.walk(item)
                             for name in names if name.lower().endswith(IMAGE_EXTENSIONS))
        elif osp.isfile(item):
            images.append(item)
        else:
            raise UserError(f'no such image or folder: {item}')
    if not images:
        raise UserError(f'no images in {" ".join(inputs)}')
    first_of = {}
    for path in images:  # results are named after the image, as the official format wants
        other = first_of.setdefault(osp.splitext(osp.basename(path))[0], path)
        if other != path:
            raise UserError(f'{other} and {path} have the same name: their results would overwrite '
                            'each other; run them separately')
    return images


def dataset_meta(cfg, checkpoint, meta):
    """The classes and palette the predictions are named by: the config's test dataset's (mmdet
    and mmseg would fall back to COCO's or Cityscapes' for a checkpoint without ``dataset_meta``);
    a checkpoint trained on other classes stops with one line."""
    metainfo = test_metainfo(cfg)
    trained = (meta.get('dataset_meta') or {}).get('classes')
    if trained is not None and tuple(trained) != tuple(metainfo['classes']):
        raise UserError(f'{checkpoint} was trained on the classes {", ".join(trained)}, not on those of the config '
                        f'({", ".join(metainfo["classes"])})')
    return metainfo


def build_inferencer(cfg, checkpoint, device):
    """(mmdet's DetInferencer or mmseg's MMSegInferencer, chosen by the config's default scope,
    task, its visualizer's class). Annotation loading is dropped from the test pipeline: inputs
    are bare images."""
    cfg = copy.deepcopy(cfg)
    cfg.test_dataloader.dataset.pipeline = [
        t for t in cfg.test_dataloader.dataset.pipeline if 'LoadAnnotations' not in t['type']]
    if model_family(cfg) == 'semantic':
        from mmseg.apis import MMSegInferencer
        from mmseg.visualization import SegLocalVisualizer
        inferencer, task, visualizer_type = MMSegInferencer(cfg, checkpoint, device=device), 'semantic', SegLocalVisualizer
    else:
        from mmdet.apis import DetInferencer
        from mmdet.visualization import DetLocalVisualizer
        inferencer, task, visualizer_type = (DetInferencer(cfg, checkpoint, device=device, show_progress=False),
                                             'instance', DetLocalVisualizer)
    return inferencer, task, visualizer_type


def batches(inferencer, images, batch_size, failed):
    """``(paths, predictions)`` per batch of consecutive images of one size after the inferencer's
    pipeline (mmseg's preprocessor stacks a test batch without padding). An image that cannot be
    read, or a batch that cannot be predicted, is skipped, said on stderr and added to ``failed``."""
    def skip(paths, reason):
        for path in paths:
            print(f'\nskipped {path}: {reason}', file=sys.stderr)
            failed.append(path)

    def predict(batch):
        paths = [path for path, _ in batch]
        try:
            return paths, inferencer.forward(inferencer.collate_fn([d for _, d in batch]))
        except Exception as e:
            skip(paths, f'cannot predict: {e}')
            return [], []

    batch = []
    for path in images:
        try:
            data = inferencer.pipeline(path)
        except Exception as e:  # mmcv/cv2 report unreadable images without naming them, in OpenCV's words
            skip([path], 'cannot decode image (empty, corrupt or not an image)' if cv2.imread(path) is None else str(e))
            continue
        if batch and (len(batch) == batch_size or data['inputs'].shape != batch[0][1]['inputs'].shape):
            yield predict(batch)
            batch = []
        batch.append((path, data))
    if batch:
        yield predict(batch)


def attach_ground_truth(sample, image_path, task, class_of_label):
    """Add the official ground truth of an image (if present) in the model's classes."""
    if task == 'semantic':
        path = official_ground_truth(image_path, 'labelIds')
        if path:
            train_ids = class_of_label[read_label_png(path)]
            sample.gt_sem_seg = PixelData(data=torch.from_numpy(train_ids[None].astype(np.int64)))
        return
    path = official_ground_truth(image_path, 'instanceIds')
    if path:
        ids = read_label_png(path)
        instances = [i for i in np.unique(ids) if is_instance(i) and class_of_label[label_id(i)] != 255]
        masks = np.stack([ids == i for i in instances]) if instances else np.zeros((0, *ids.shape), bool)
        boxes = [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] for ys, xs in (np.nonzero(m) for m in masks)]
        sample.gt_instances = InstanceData(
            masks=torch.from_numpy(masks), bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            labels=torch.tensor([class_of_label[label_id(i)] for i in instances], dtype=torch.long))


def write_result(sample, name, results_dir, task, label_ids):
    """The official result format of one image (``label_ids``: class index -> Cityscapes label id)."""
    if task == 'semantic':
        write_semantic_result(results_dir, name, label_ids[sample.pred_sem_seg.data[0].cpu().numpy()])
        return
    pred = sample.pred_instances
    write_instance_result(results_dir, name, zip(pred.masks.cpu().numpy(), label_ids[pred.labels.cpu().numpy()].tolist(),
                                                 pred.scores.tolist()))


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    images = list_images(args.images)
    if is_export(args.checkpoint):  # run by onnxruntime inside the same pipeline
        cfg.model = exported_model(cfg, args.checkpoint, args.device)
        inferencer, task, visualizer_type = build_inferencer(cfg, None, args.device)
        inferencer.model.dataset_meta = dataset_meta(cfg, args.checkpoint, {})
    else:
        weights = load_weights(args.checkpoint)  # missing, truncated or corrupt: one line before anything is built
        inferencer, task, visualizer_type = build_inferencer(cfg, args.checkpoint, args.device)
        check_fits(inferencer.model, args.checkpoint, *weights)
        inferencer.model.dataset_meta = dataset_meta(cfg, args.checkpoint, weights[1])
        del weights
    visualizer = quiet_visualizer(visualizer_type, inferencer.model.dataset_meta, 'infer')
    classes = list(inferencer.model.dataset_meta['classes'])
    class_of_label, label_ids = class_indices(classes), np.array(label_ids_of(classes), np.uint8)
    if remove_stale_temporaries(args.out):
        print(f'removed the temporary files of an interrupted run in {args.out}')
    bar, failed = ProgressBar(len(images)), []
    for paths, samples in batches(inferencer, images, args.batch_size, failed):
        for path, sample in zip(paths, samples):
            attach_ground_truth(sample, path, task, class_of_label)
            name = osp.splitext(osp.basename(path))[0]
            write_result(sample, name, osp.join(args.out, 'results'), task, label_ids)
            write_overlay(visualizer, sample, osp.join(args.out, 'overlays', f'{name}.png'),
                          mmcv.imread(path, channel_order='rgb'))
            bar.update()
    done = len(images) - len(failed)
    print(f'\n{done} images: overlays in {args.out}/overlays, official-format results in {args.out}/results')
    if failed:
        raise UserError(f'{len(failed)} of {len(images)} images could not be predicted (e.g. {failed[0]}; each is '
                        'named above); the others are written')


if __name__ == '__main__':
    run_tool(main)
