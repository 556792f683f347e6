"""The official Cityscapes instance AP inside mmdet's evaluation loop, in memory."""
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmcityscapes.cityscapes.files import gt_fine_path
from mmcityscapes.cityscapes.instance_eval import evaluate, match_image
from mmcityscapes.cityscapes.labels import label_ids_of
from mmcityscapes.common.io import read_png


@METRICS.register_module()
class CityscapesInstanceMetric(BaseMetric):
    """Cityscapes mask AP (0.5:0.95) and AP50, overall and per class, as cityscapesscripts'
    evalInstanceLevelSemanticLabeling computes them, without its files.

    mmdet's ``CityScapesMetric`` writes a PNG per predicted mask and reads each back through the
    official script (which also fails on numpy 2 and drops ``matches.json`` in the current
    directory). This metric keeps, per image, only the overlap counts of the predicted masks
    with the ground-truth instances (``match_image``) and scores them at the end.

    Args:
        seg_prefix (str, optional): folder of ``<city>/*_gtFine_instanceIds.png``; by default
            derived from each image path of the official layout (leftImg8bit -> gtFine).
    """

    default_prefix = 'cityscapes'

    def __init__(self, seg_prefix: Optional[str] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.seg_prefix = seg_prefix

    def gt_path(self, img_path: str) -> str:
        path = gt_fine_path(img_path, 'instanceIds')
        if self.seg_prefix:
            return osp.join(self.seg_prefix, *path.split(osp.sep)[-2:])
        return path

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        label_ids = label_ids_of(self.dataset_meta['classes'])
        for sample in data_samples:
            pred = sample['pred_instances']
            masks = pred['masks'].detach().cpu().numpy()
            labels = [label_ids[int(i)] for i in pred['labels']]
            scores = pred['scores'].detach().cpu().numpy()
            self.results.append(match_image(read_png(self.gt_path(sample['img_path'])), zip(masks, labels, scores)))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """``evaluate``'s result; with no prediction it is 0, and with no ground-truth instance
        (the official script's NaN) the summary is reported as 0 too, with a warning."""
        result = evaluate(results)
        logger = MMLogger.get_current_instance()
        if not any(image[name]['pred'] for image in results for name in image):
            logger.warning(f'Cityscapes AP: no predicted instance on any of the {len(results)} images; AP is 0')
        if np.isnan(result['mAP']):
            logger.warning(f'Cityscapes AP: no ground-truth instance of an evaluated class in the {len(results)} '
                           'images; AP reported as 0')
            result.update(mAP=0.0, AP50=0.0)
        return result
