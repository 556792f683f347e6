"""The files a config's datasets read.

The datasets inside wrappers, their annotation files and folders, the labelled images with their
annotations (the panoptic dataset's images named by frame, in city folders), and the classes of
the test dataset."""
import glob
import importlib
import os.path as osp
from typing import List, Tuple, Union

from mmengine.config import Config

from mmcityscapes.cityscapes.files import IMAGE_SUFFIX, annotation_name
from mmcityscapes.common.io import read_json


def panoptic_image_path(img_dir: str, image_id: str) -> str:
    """The image of a panoptic annotation: its id is the frame (``<city>_<seq>_<frame>``), the image
    ``<img_dir>/<city>/<frame>_leftImg8bit.png`` (the JSON's ``file_name``, as createPanopticImgs
    writes it, names the ground truth, with ``_gtFine``)."""
    return osp.join(img_dir, image_id.split('_')[0], image_id + IMAGE_SUFFIX)


def innermost_dataset(dataset_cfg: dict) -> dict:
    """The dataset inside wrappers such as RepeatDataset."""
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def leaf_datasets(dataset_cfg: dict) -> List[dict]:
    """The datasets of a dataset config, inside wrappers and concatenations."""
    if 'datasets' in dataset_cfg:
        return [leaf for part in dataset_cfg['datasets'] for leaf in leaf_datasets(part)]
    return leaf_datasets(dataset_cfg['dataset']) if 'dataset' in dataset_cfg else [dataset_cfg]


def dataset_paths(dataset_cfg: dict) -> List[Tuple[str, str, str]]:
    """(kind, path, data_root) of every annotation file and folder a dataset config reads,
    wrappers included."""
    found = []
    for dataset in leaf_datasets(dataset_cfg):
        root = dataset.get('data_root') or ''
        paths = [('annotation file', dataset['ann_file'])] if dataset.get('ann_file') else []
        paths += [('folder', prefix) for prefix in (dataset.get('data_prefix') or {}).values() if prefix]
        found += [(kind, osp.join(root, path), root) for kind, path in paths]
    return found


def labelled_images(dataset_cfg: dict) -> List[Tuple[str, Union[str, Tuple[int, int]]]]:
    """``(image path, its annotation)`` of every annotation of a dataset config: the images of a
    COCO file with their recorded ``(width, height)`` (mmdet, which would fail on a missing one in
    a worker), or the images of each label map or listed stem with the label map (mmseg, which
    lists the image folder and would silently drop a labelled image that is missing)."""
    root, prefix = dataset_cfg.get('data_root') or '', dataset_cfg.get('data_prefix') or {}
    ann_file = osp.join(root, dataset_cfg['ann_file']) if dataset_cfg.get('ann_file') else None
    if ann_file and ann_file.endswith('.json'):
        img_dir = osp.join(root, prefix.get('img', ''))
        images = read_json(ann_file).get('images', [])
        if dataset_cfg.get('type') == 'CityscapesPanopticDataset':  # image ids are frames, in city folders
            return [(panoptic_image_path(img_dir, image['id']), (image['width'], image['height'])) for image in images]
        return [(osp.join(img_dir, image['file_name']), (image['width'], image['height'])) for image in images]
    if 'seg_map_path' not in prefix:
        return []
    img_dir, seg_dir = osp.join(root, prefix.get('img_path', '')), osp.join(root, prefix['seg_map_path'])
    img_suffix = dataset_cfg.get('img_suffix', IMAGE_SUFFIX)
    seg_suffix = dataset_cfg.get('seg_map_suffix', annotation_name('', 'labelTrainIds.png'))
    if ann_file:
        with open(ann_file) as f:
            stems = [line.strip() for line in f if line.strip()]
    else:
        stems = [osp.relpath(path, seg_dir)[:-len(seg_suffix)]
                 for path in glob.glob(osp.join(seg_dir, '**', '*' + seg_suffix), recursive=True)]
    return [(osp.join(img_dir, stem + img_suffix), osp.join(seg_dir, stem + seg_suffix)) for stem in sorted(stems)]


def test_metainfo(cfg: Config) -> dict:
    """The metainfo (classes, palette) of the config's test dataset: its dataset class's,
    updated by the config's ``metainfo``."""
    dataset = innermost_dataset(cfg.test_dataloader.dataset)
    registry = importlib.import_module(f'{cfg.default_scope}.registry').DATASETS
    return {**registry.get(dataset.type).METAINFO, **(dataset.get('metainfo') or {})}
