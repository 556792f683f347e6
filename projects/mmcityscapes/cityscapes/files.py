"""Cityscapes file names and folders: the official layout and the files the converter adds.

    <root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_{polygons.json,labelIds,instanceIds,color}.png
    <root>/gtCoarse/<split>/<city>/<city>_<seq>_<frame>_gtCoarse_....png
    <root>/annotations/instancesonly_filtered_gtFine_<split>.json   (the converter's COCO files)

A *stem* is ``<city>/<city>_<seq>_<frame>`` (relative to a split folder), a *frame*
``<city>_<seq>_<frame>``, the key by which the official scripts pair predictions and ground truth.
"""
import glob
import os.path as osp
from typing import List, Optional, Tuple

from mmcityscapes.common.errors import UserError

IMAGES = 'leftImg8bit'  # the camera images' folder, also the last part of their names
FINE, COARSE = 'gtFine', 'gtCoarse'
IMAGE_SUFFIX = f'_{IMAGES}.png'


def split_dir(root: str, split: str, kind: str = IMAGES) -> str:
    """``<root>/<kind>/<split>``: the images, or a ground-truth kind (``FINE``, ``COARSE``)."""
    return osp.join(root, kind, split)


def list_images(root: str, split: str) -> Tuple[str, List[str]]:
    """(the split's image folder, its ``*_leftImg8bit.png`` files, sorted)."""
    folder = split_dir(root, split)
    return folder, sorted(glob.glob(osp.join(folder, '*', '*' + IMAGE_SUFFIX)))


def image_stem(image_path: str, folder: str) -> str:
    """``<city>/<city>_<seq>_<frame>`` of an image, relative to its split folder."""
    return osp.relpath(image_path, folder)[:-len(IMAGE_SUFFIX)]


def annotation_name(stem: str, suffix: str, kind: str = FINE) -> str:
    """``<stem>_gtFine_<suffix>`` (``suffix`` with its extension, e.g. ``labelIds.png``)."""
    return f'{stem}_{kind}_{suffix}'


def annotation_path(root: str, split: str, stem: str, suffix: str, kind: str = FINE) -> str:
    return osp.join(split_dir(root, split, kind), annotation_name(stem, suffix, kind))


def frame(path: str) -> str:
    """``<city>_<seq>_<frame>`` of any Cityscapes file name."""
    return '_'.join(osp.basename(path).split('_')[:3])


def gt_fine_path(image_path: str, suffix: str) -> str:
    """``<root>/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` ->
    ``<root>/gtFine/<split>/<city>/<name>_gtFine_<suffix>.png``; a path that already names that
    annotation (mmdet's metrics take those too) is itself. Any other name stops with one line
    naming the suffix expected."""
    city_dir, name = osp.split(image_path)
    if name.endswith(annotation_name('', f'{suffix}.png')):
        return image_path
    if not name.endswith(IMAGE_SUFFIX):
        raise UserError(f'{image_path}: expected a Cityscapes image name ending with {IMAGE_SUFFIX} (or its '
                        f'{annotation_name("", suffix + ".png")}) to find its ground truth')
    split_path, split = osp.split(osp.dirname(city_dir))
    return osp.join(osp.dirname(split_path), FINE, split, osp.basename(city_dir),
                    annotation_name(name[:-len(IMAGE_SUFFIX)], f'{suffix}.png'))


def image_of_annotation(gt_path: str) -> str:
    """The image of a ``gtFine`` file in the official layout (``gt_fine_path`` reversed)."""
    city_dir, name = osp.split(gt_path)
    split_path, split = osp.split(osp.dirname(city_dir))
    return osp.join(osp.dirname(split_path), IMAGES, split, osp.basename(city_dir), frame(name) + IMAGE_SUFFIX)


def official_ground_truth(image_path: str, suffix: str) -> Optional[str]:
    """The ``gtFine_<suffix>.png`` of an image, if the image is in the official layout and the file exists."""
    in_layout = image_path.endswith(IMAGE_SUFFIX) and \
        osp.basename(osp.dirname(osp.dirname(osp.dirname(image_path)))) == IMAGES
    path = gt_fine_path(image_path, suffix) if in_layout else None
    return path if path and osp.isfile(path) else None


def ground_truth_files(gt_root: str, suffix: str) -> List[str]:
    """Every ``<city>/*_gtFine_<suffix>.png`` of a ground-truth split folder, sorted."""
    return sorted(glob.glob(osp.join(gt_root, '*', annotation_name('*', f'{suffix}.png'))))


def coco_file(root: str, split: str) -> str:
    """The converter's COCO instance annotations of a split (or subset: ``train_tune``, ...)."""
    return osp.join(root, 'annotations', f'instancesonly_filtered_{FINE}_{split}.json')


def is_cityscapes_root(root: str) -> bool:
    return osp.isdir(osp.join(root, IMAGES))
