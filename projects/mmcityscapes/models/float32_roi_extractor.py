"""mmdet's SingleRoIExtractor, kept in float32 under mixed precision."""
from typing import Optional, Tuple

import torch
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class Float32RoIExtractor(SingleRoIExtractor):
    """``SingleRoIExtractor`` that pools in float32 under autocast, as torchvision's RoIAlign does.

    mmdet casts the RoIs to the features' dtype: under AMP the boxes become float16 (1-pixel steps
    from 1024 px, 2-pixel steps from 2048 px, which also moves RoIs between pyramid levels) and
    RoIAlign runs in float16, its backward accumulating with half-precision atomics. Here features
    and RoIs enter in float32 and so do the pooled features that leave; autocast casts them for the
    next layer. Without autocast nothing changes.
    """

    def forward(self, feats: Tuple[Tensor], rois: Tensor, roi_scale_factor: Optional[float] = None) -> Tensor:
        with torch.autocast(feats[0].device.type, enabled=False):
            return super().forward(tuple(f.float() for f in feats), rois.float(), roi_scale_factor)
