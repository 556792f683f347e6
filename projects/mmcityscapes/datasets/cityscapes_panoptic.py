"""Cityscapes panoptic segmentation for mmdet's panoptic models, without panopticapi."""
import os.path as osp
from typing import List

import numpy as np
from cityscapesscripts.helpers.labels import id2label
from mmdet.datasets import CocoPanopticDataset
from mmdet.datasets.transforms import LoadAnnotations, LoadPanopticAnnotations
from mmdet.registry import DATASETS, TRANSFORMS

from mmcityscapes.cityscapes import panoptic
from mmcityscapes.common.io import read_json
from mmcityscapes.datasets.layout import panoptic_image_path


@DATASETS.register_module()
class CityscapesPanopticDataset(CocoPanopticDataset):
    """The panoptic ground truth of a split (``gtFine/cityscapes_panoptic_<split>.json``, which the
    dataset converter writes as cityscapesscripts' createPanopticImgs does) as mmdet's
    ``CocoPanopticDataset`` gives it to a model: 8 thing classes then 11 stuff classes
    (``panoptic.CLASSES``), thing instances with their boxes and masks (a crowd region only in the
    semantic map, as mmdet does), and every segment for the semantic map. The JSON is read
    directly: mmdet's COCO wrapper would order the categories by label id (stuff first), its image
    paths lack Cityscapes' city folders, and the JSON names each image
    ``<frame>_gtFine_leftImg8bit.png`` (createPanopticImgs does): the image is ``<frame>_leftImg8bit.png``.

    ``data_prefix``: ``img`` (``leftImg8bit/<split>/``) and ``seg`` (the PNG folder).
    """

    METAINFO = dict(classes=panoptic.CLASSES, thing_classes=panoptic.THING_CLASSES,
                    stuff_classes=panoptic.STUFF_CLASSES,
                    palette=[tuple(id2label[i].color) for i in panoptic.CLASS_LABEL_IDS])

    def load_data_list(self) -> List[dict]:
        content = read_json(self.ann_file)
        label_of = {label_id: i for i, label_id in enumerate(panoptic.CLASS_LABEL_IDS)}
        images = {image['id']: image for image in content['images']}
        data_list = []
        for annotation in content['annotations']:
            image = images[annotation['image_id']]
            instances, segments = [], []
            for segment in annotation['segments_info']:
                x, y, w, h = segment['bbox']
                if segment['area'] <= 0 or w < 1 or h < 1:
                    continue
                label = label_of[segment['category_id']]
                # a crowd region of a thing class is in the semantic map only
                is_thing = label < len(panoptic.THING_CLASSES) and not segment['iscrowd']
                if is_thing:
                    instances.append(dict(bbox=[x, y, x + w, y + h], bbox_label=label, ignore_flag=0))
                segments.append(dict(id=segment['id'], category=label, is_thing=is_thing))
            data_list.append(dict(
                img_path=panoptic_image_path(self.data_prefix['img'], image['id']), img_id=image['id'],
                seg_map_path=osp.join(self.data_prefix['seg'], annotation['file_name']), height=image['height'],
                width=image['width'], instances=instances, segments_info=segments))
        return data_list


@TRANSFORMS.register_module()
class LoadCityscapesPanopticAnnotations(LoadPanopticAnnotations):
    """mmdet's ``LoadPanopticAnnotations`` (boxes, labels, thing masks and the semantic map of
    every segment, 255 for void) with the panoptic PNG decoded here instead of by panopticapi,
    which is not on the package index, and the semantic map as uint8 (the resize transforms refuse
    the segment ids' uint32)."""

    def __init__(self, with_bbox: bool = True, with_label: bool = True, with_mask: bool = True,
                 with_seg: bool = True, box_type: str = 'hbox', imdecode_backend: str = 'cv2',
                 backend_args: dict = None):
        LoadAnnotations.__init__(self, with_bbox=with_bbox, with_label=with_label, with_mask=with_mask,
                                 with_seg=with_seg, with_keypoints=False, box_type=box_type,
                                 imdecode_backend=imdecode_backend, backend_args=backend_args)
        self.rgb2id = panoptic.rgb_to_ids

    def _load_masks_and_semantic_segs(self, results: dict) -> None:
        super()._load_masks_and_semantic_segs(results)
        if 'gt_seg_map' in results:
            results['gt_seg_map'] = results['gt_seg_map'].astype(np.uint8)  # classes < 19, 255 void
