"""The official Cityscapes panoptic quality inside mmdet's evaluation loop, in memory."""
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmcityscapes.cityscapes import files, panoptic
from mmcityscapes.common.errors import UserError
from mmcityscapes.common.io import read_json


@METRICS.register_module()
class CityscapesPanopticMetric(BaseMetric):
    """Cityscapes PQ, SQ and RQ (over all, things and stuff, and per class) as cityscapesscripts'
    evalPanopticSemanticLabeling computes them, from the model's panoptic results without writing
    them (``pred_panoptic_seg`` in mmdet's form: ``instance * 1000 + class`` for things, the class
    for stuff, the number of classes for void; the classes of ``panoptic.CLASSES``).

    mmdet's ``CocoPanopticMetric`` needs panopticapi, which is not on the package index, and names
    prediction files by integer image ids, while Cityscapes' are strings.

    Args:
        ann_file (str, optional): the panoptic ground truth JSON; by default
            ``gtFine/cityscapes_panoptic_<split>.json`` of each image's root and split.
        seg_prefix (str, optional): its PNG folder; by default the JSON's name without ``.json``.
    """

    default_prefix = 'cityscapes'

    def __init__(self, ann_file: Optional[str] = None, seg_prefix: Optional[str] = None,
                 collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ann_file, self.seg_prefix = ann_file, seg_prefix
        self.ground_truths: Dict[str, Tuple[str, dict]] = {}

    def ground_truth(self, img_path: str) -> Tuple[str, dict]:
        """(the PNG, the annotation) of an image's panoptic ground truth."""
        ann_file = self.ann_file
        if ann_file is None:
            split_dir = osp.dirname(osp.dirname(img_path))
            root = osp.dirname(osp.dirname(split_dir))
            ann_file = panoptic.ground_truth_paths(root, osp.basename(split_dir))[0]
        if ann_file not in self.ground_truths:
            content = read_json(ann_file)
            folder = self.seg_prefix or ann_file[:-len('.json')]
            self.ground_truths[ann_file] = (folder, {a['image_id']: a for a in content['annotations']})
        folder, annotations = self.ground_truths[ann_file]
        annotation = annotations.get(files.frame(img_path))
        if annotation is None:
            raise UserError(f'{ann_file} has no ground truth for {img_path}')
        return osp.join(folder, annotation['file_name']), annotation

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred_ids, pred_segments = panoptic.from_class_map(
                sample['pred_panoptic_seg']['sem_seg'][0].cpu().numpy())
            gt_png, annotation = self.ground_truth(sample['img_path'])
            gt_ids = panoptic.read_panoptic_png(gt_png)
            self.results.append(panoptic.match_image(gt_ids, annotation['segments_info'], pred_ids, pred_segments,
                                                     f'the prediction of {sample["img_path"]}'))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """PQ, SQ, RQ, their things (``_th``) and stuff (``_st``) averages and per-class values, as
        fractions; a warning when no category has a segment (the official script divides by 0)."""
        result = panoptic.evaluate(results)
        if not result['All']['n']:
            MMLogger.get_current_instance().warning(
                f'Cityscapes PQ: no segment of an evaluated category in the {len(results)} images; PQ is 0')
        return panoptic.flat_metrics(result)
