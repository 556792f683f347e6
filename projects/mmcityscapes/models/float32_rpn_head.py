"""mmdet's RPNHead, decoding and suppressing its proposals in float32 under mixed precision."""
from typing import List

import torch
from mmdet.models.dense_heads import RPNHead
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor


@MODELS.register_module()
class Float32RPNHead(RPNHead):
    """``RPNHead`` whose proposals are decoded, filtered and suppressed (NMS) in float32 under
    autocast, from the same float16/bfloat16 convolution outputs.

    mmdet decodes the boxes in the outputs' dtype: float16 boxes are 1 px apart from 1024 px and
    2 px from 2048 px, which shifts proposals and their overlaps in NMS; mmcv's CPU NMS does not
    take bfloat16 at all. Without autocast nothing changes.
    """

    def _predict_by_feat_single(self, cls_score_list: List[Tensor], bbox_pred_list: List[Tensor],
                                score_factor_list: List[Tensor], mlvl_priors: List[Tensor], img_meta: dict,
                                cfg: ConfigDict,
                                rescale: bool = False, with_nms: bool = True) -> InstanceData:
        with torch.autocast(cls_score_list[0].device.type, enabled=False):
            return super()._predict_by_feat_single(
                [s.float() for s in cls_score_list], [b.float() for b in bbox_pred_list], score_factor_list,
                [p.float() for p in mlvl_priors], img_meta, cfg, rescale, with_nms)
