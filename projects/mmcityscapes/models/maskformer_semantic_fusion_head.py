"""mmdet's MaskFormer fusion head with Mask2Former's semantic inference, so that one model gives
the panoptic, instance and semantic results."""
from typing import List

import torch
import torch.nn.functional as F
from mmdet.models.seg_heads.panoptic_fusion_heads import MaskFormerFusionHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.structures import PixelData
from torch import Tensor


def semantic_scores(mask_cls: Tensor, mask_pred: Tensor) -> Tensor:
    """Per-class scores of one image, ``(C, H, W)``, as Mask2Former's semantic inference computes
    them: each query's class probabilities without the last ("no object") column, times its
    sigmoid mask, summed over the queries.

    Args:
        mask_cls (Tensor): class logits of the queries, ``(Q, C + 1)``.
        mask_pred (Tensor): mask logits of the queries, ``(Q, H, W)``.

    Returns:
        Tensor: the scores, ``(C, H, W)``.
    """
    return torch.einsum('qc,qhw->chw', F.softmax(mask_cls, dim=-1)[:, :-1], mask_pred.sigmoid())


@MODELS.register_module()
class MaskFormerSemanticFusionHead(MaskFormerFusionHead):
    """mmdet's ``MaskFormerFusionHead`` (panoptic and instance results, unchanged) with the
    semantic inference it leaves out (``semantic_on`` asserts there): with
    ``test_cfg.semantic_on``, each data sample also gets ``pred_sem_seg``, the argmax of
    ``semantic_scores`` (the classes in the head's order: things, then stuff), at the size the
    other results have. It is set on the samples here because mmdet's ``MaskFormer`` refuses a
    semantic result among those the head returns.

    Args:
        num_things_classes (int): thing classes. Defaults to 80.
        num_stuff_classes (int): stuff classes. Defaults to 53.
        test_cfg (dict, optional): ``panoptic_on``, ``instance_on``, ``semantic_on`` and mmdet's
            thresholds (``object_mask_thr``, ``iou_thr``, ``filter_low_score``,
            ``max_per_image``). Defaults to None.
    """

    def semantic_postprocess(self, mask_cls: Tensor, mask_pred: Tensor) -> PixelData:
        """The semantic result of one image: ``sem_seg`` ``(1, H, W)``, the class of each pixel."""
        return PixelData(sem_seg=semantic_scores(mask_cls, mask_pred).argmax(0, keepdim=True))

    def predict(self, mask_cls_results: Tensor, mask_pred_results: Tensor, batch_data_samples: SampleList,
                rescale: bool = False, **kwargs) -> List[dict]:
        """mmdet's ``predict`` (padding removed, masks resized to the original image with
        ``rescale``), with the semantic result set on each sample as ``pred_sem_seg``."""
        panoptic_on = self.test_cfg.get('panoptic_on', True)
        instance_on = self.test_cfg.get('instance_on', False)
        semantic_on = self.test_cfg.get('semantic_on', False)
        results = []
        for mask_cls, mask_pred, sample in zip(mask_cls_results, mask_pred_results, batch_data_samples):
            height, width = sample.metainfo['img_shape'][:2]
            mask_pred = mask_pred[:, :height, :width]
            if rescale:
                mask_pred = F.interpolate(mask_pred[:, None], size=sample.metainfo['ori_shape'][:2], mode='bilinear',
                                          align_corners=False)[:, 0]
            result = {}
            if panoptic_on:
                result['pan_results'] = self.panoptic_postprocess(mask_cls, mask_pred)
            if instance_on:
                result['ins_results'] = self.instance_postprocess(mask_cls, mask_pred)
            if semantic_on:
                sample.pred_sem_seg = self.semantic_postprocess(mask_cls, mask_pred)
            results.append(result)
        return results
