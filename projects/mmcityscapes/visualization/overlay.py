"""Side-by-side prediction overlays: image | ground truth | prediction."""
import logging
from typing import Optional, Type

import mmcv
import numpy as np
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement
from mmengine.visualization import Visualizer

from mmcityscapes.common.io import atomic_output


def quiet_visualizer(visualizer_type: Type[Visualizer], dataset_meta: dict, name: str) -> Visualizer:
    """An mmdet/mmseg visualizer without storage backends (nothing is written but the panels).
    Built directly, not through ``get_instance``, so it does not become mmengine's current
    visualizer."""
    visualizer = visualizer_type(name=name)
    visualizer.dataset_meta = dataset_meta
    return visualizer


def overlay_panels(visualizer: Visualizer, image: np.ndarray, data_sample: BaseDataElement) -> np.ndarray:
    """``image | ground truth | prediction`` (RGB), drawn by an mmdet/mmseg visualizer, with the
    panels ``data_sample`` has: no ground truth, ``image | prediction``; no prediction (a dataset
    sample), ``image | ground truth``."""
    has_gt = 'gt_sem_seg' in data_sample or 'gt_instances' in data_sample
    has_pred = 'pred_sem_seg' in data_sample or 'pred_instances' in data_sample
    panels = [image]
    for draw_gt in [flag for flag, present in ((True, has_gt), (False, has_pred)) if present]:
        visualizer.add_datasample('overlay', image, data_sample, draw_gt=draw_gt, draw_pred=not draw_gt)
        panels.append(visualizer.get_image())
    return np.concatenate(panels, axis=1)


def write_overlay(visualizer: Visualizer, data_sample: BaseDataElement, path: str,
                  image: Optional[np.ndarray] = None) -> None:
    """Write the panels of ``data_sample`` (its ``img_path`` is read unless ``image`` is given).
    A one-pixel image gets none: mmseg's visualizer indexes with its one-element mask as an
    integer and fails."""
    if image is None:
        image = mmcv.imread(data_sample.img_path, channel_order='rgb')
    if image.shape[0] * image.shape[1] == 1:
        print_log(f'no overlay for the one-pixel image {data_sample.img_path}', logger='current', level=logging.WARNING)
        return
    with atomic_output(path) as tmp:
        mmcv.imwrite(overlay_panels(visualizer, image, data_sample)[..., ::-1], tmp)
