"""Prediction of image files with mmdet's/mmseg's inferencers (``tools/infer.py``): overlays with
the official ground truth where it exists, and the test server's result format."""
import copy
import os
import os.path as osp
import sys
import warnings
from typing import Iterator, List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.infer import BaseInferencer
from mmengine.structures import BaseDataElement, InstanceData, PixelData
from mmengine.utils import ProgressBar

from mmcityscapes.apis.model_source import ModelSource
from mmcityscapes.cityscapes import panoptic
from mmcityscapes.cityscapes.files import IMAGES, official_ground_truth
from mmcityscapes.cityscapes.labels import class_indices, is_instance, label_id, label_ids_of
from mmcityscapes.cityscapes.results import (
    write_instance_result,
    write_panoptic_json,
    write_panoptic_result,
    write_semantic_result,
)
from mmcityscapes.common.errors import UserError
from mmcityscapes.common.io import read_label_png, remove_stale_temporaries
from mmcityscapes.utils.tasks import model_family, predicted_tasks
from mmcityscapes.visualization import quiet_visualizer, write_overlay

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')


def list_images(inputs: Sequence[str]) -> List[str]:
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


def build_inferencer(cfg: Config, source: ModelSource, device: str) -> Tuple[object, str, type]:
    """(mmdet's DetInferencer or mmseg's MMSegInferencer on ``source``'s model, the task, the
    inferencer's visualizer class), chosen by the config's default scope. Annotation loading is
    dropped from the test pipeline: inputs are bare images. The source's tensors are loaded
    after the inferencer is built (the checkpoint is read once, by ``ModelSource``)."""
    cfg = copy.deepcopy(cfg)
    cfg.model = source.model_config(cfg, device)
    cfg.test_dataloader.dataset.pipeline = [
        t for t in cfg.test_dataloader.dataset.pipeline if 'LoadAnnotations' not in t['type']]
    with warnings.catch_warnings():  # 'randomly initialized model', 'use COCO classes': not so, both set below
        warnings.filterwarnings('ignore', message='(Checkpoint is not loaded|weights is None)')
        if model_family(cfg) == 'semantic':
            from mmseg.apis import MMSegInferencer
            from mmseg.visualization import SegLocalVisualizer
            inferencer, task, visualizer = MMSegInferencer(cfg, None, device=device), 'semantic', SegLocalVisualizer
        else:
            from mmdet.apis import DetInferencer
            from mmdet.visualization import DetLocalVisualizer
            inferencer, task, visualizer = (DetInferencer(cfg, None, device=device, show_progress=False),
                                            model_family(cfg), DetLocalVisualizer)
    source.load_into(inferencer.model)
    inferencer.model.dataset_meta = source.dataset_meta(cfg)
    return inferencer, task, visualizer


def batches(inferencer: BaseInferencer, images: Sequence[str], batch_size: int,
            failed: List[str]) -> Iterator[Tuple[List[str], list]]:
    """``(paths, predictions)`` per batch of consecutive images of one size after the inferencer's
    pipeline (mmseg's preprocessor stacks a test batch without padding). An image that cannot be
    read, or a batch that cannot be predicted, is skipped, said on stderr and added to ``failed``."""
    def skip(paths: List[str], reason: str) -> None:
        for path in paths:
            print(f'\nskipped {path}: {reason}', file=sys.stderr)
            failed.append(path)

    def predict(batch: List[Tuple[str, dict]]) -> Tuple[List[str], list]:
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


def attach_ground_truth(sample: BaseDataElement, image_path: str, task: str, class_of_label: np.ndarray) -> None:
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


def write_result(sample: BaseDataElement, name: str, results_dir: str, task: str, label_ids: np.ndarray) -> \
        Optional[dict]:
    """The official result format of one image (``label_ids``: class index -> Cityscapes label id);
    for a panoptic result its PNG, and the annotation the split's JSON lists (``write_panoptic_json``)."""
    if task == 'semantic':
        pred = sample.pred_sem_seg
        classes = pred.data if 'data' in pred else pred.sem_seg  # mmseg's PixelData holds ``data``, mmdet's ``sem_seg``
        write_semantic_result(results_dir, name, label_ids[classes[0].cpu().numpy()])
        return None
    if task == 'panoptic':
        segment_ids, segments = panoptic.from_class_map(sample.pred_panoptic_seg.sem_seg[0].cpu().numpy())
        return write_panoptic_result(results_dir, panoptic_split(sample.img_path), name, segment_ids, segments)
    pred = sample.pred_instances
    write_instance_result(results_dir, name, zip(pred.masks.cpu().numpy(),
                                                 label_ids[pred.labels.cpu().numpy()].tolist(),
                                                 pred.scores.tolist()))
    return None


def panoptic_split(image_path: str) -> str:
    """The split an image belongs to in the official layout (``leftImg8bit/<split>/<city>/``), else
    ``test``: the name of its panoptic results (``cityscapes_panoptic_<split>.json``)."""
    in_layout = osp.basename(osp.dirname(osp.dirname(osp.dirname(image_path)))) == IMAGES
    return osp.basename(osp.dirname(osp.dirname(image_path))) if in_layout else 'test'


def infer(cfg: Config, source: ModelSource, images: Sequence[str], out: str, batch_size: int = 4,
          device: str = 'cpu') -> List[str]:
    """Write ``<out>/results/`` (the test server's format) and ``<out>/overlays/`` for ``images``;
    returns the images that could not be predicted (each said on stderr as it is skipped). A model
    that gives several kinds of result (``predicted_tasks``: panoptic, instance, semantic) writes
    each in the format of its own table, ``<out>/results/<kind>/``."""
    inferencer, task, visualizer_type = build_inferencer(cfg, source, device)
    tasks = predicted_tasks(cfg)
    results_dirs = {kind: osp.join(out, 'results', *([kind] if len(tasks) > 1 else [])) for kind in tasks}
    visualizer = quiet_visualizer(visualizer_type, inferencer.model.dataset_meta, 'infer')
    classes = list(inferencer.model.dataset_meta['classes'])
    class_of_label, label_ids = class_indices(classes), np.array(label_ids_of(classes), np.uint8)
    if remove_stale_temporaries(out):
        print(f'removed the temporary files of an interrupted run in {out}')
    bar, failed, panoptic_annotations = ProgressBar(len(images)), [], {}
    for paths, samples in batches(inferencer, images, batch_size, failed):
        for path, sample in zip(paths, samples):
            attach_ground_truth(sample, path, task, class_of_label)
            name = osp.splitext(osp.basename(path))[0]
            for kind, results_dir in results_dirs.items():
                annotation = write_result(sample, name, results_dir, kind, label_ids)
                if annotation:
                    panoptic_annotations.setdefault(panoptic_split(path), []).append(annotation)
            write_overlay(visualizer, sample, osp.join(out, 'overlays', f'{name}.png'),
                          mmcv.imread(path, channel_order='rgb'))
            bar.update()
    for split, annotations in panoptic_annotations.items():  # last: its presence means the PNGs are written
        write_panoptic_json(results_dirs['panoptic'], split, annotations)
    return failed
