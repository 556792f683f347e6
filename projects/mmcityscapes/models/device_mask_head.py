"""mmdet's FCNMaskHead with its mask targets built on the proposals' device."""
from typing import List

import torch
from mmcv.ops import roi_align
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks, mask_target
from mmdet.utils import InstanceList
from mmengine.config import ConfigDict
from torch import Tensor
from torch.nn.modules.utils import _pair


@MODELS.register_module()
class DeviceTargetFCNMaskHead(FCNMaskHead):
    """``FCNMaskHead`` computing the same mask targets without a host round trip.

    mmdet's ``mask_target`` copies the positive proposals to numpy, makes one full-image float
    copy of the assigned ground-truth mask per positive proposal (up to 128 × 1024×2048 × 4 bytes
    per image), crops them with RoIAlign and brings the crops back through numpy. Here the
    ground-truth masks go to the device once, as one image each, and RoIAlign reads the assigned
    one through the RoI's batch index: the same crops, the same binarisation.
    """

    def get_targets(self, sampling_results: List[SamplingResult], batch_gt_instances: InstanceList,
                    rcnn_train_cfg: ConfigDict) -> Tensor:
        mask_size = _pair(rcnn_train_cfg.mask_size)
        binarize = not rcnn_train_cfg.get('soft_mask_target', False)
        targets = []
        for result, gt_instances in zip(sampling_results, batch_gt_instances):
            proposals, masks = result.pos_priors, gt_instances.masks
            if not isinstance(masks, BitmapMasks) or len(proposals) == 0:  # polygons, or nothing to crop
                targets.append(mask_target([proposals], [result.pos_assigned_gt_inds], [masks], rcnn_train_cfg))
                continue
            limits = proposals.new_tensor([masks.width, masks.height] * 2)
            boxes = torch.minimum(proposals.clamp(min=0), limits)
            rois = torch.cat([result.pos_assigned_gt_inds[:, None].to(boxes.dtype), boxes], dim=1)
            images = torch.from_numpy(masks.masks).to(proposals.device)[:, None].to(boxes.dtype)
            crops = roi_align(images, rois, mask_size, 1.0, 0, 'avg', True).squeeze(1)
            targets.append((crops >= 0.5).float() if binarize else crops)
        return torch.cat(targets)
