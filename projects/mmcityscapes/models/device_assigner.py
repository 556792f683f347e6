"""mmdet's MaxIoUAssigner without host-device synchronisation."""
import torch
from mmdet.models.task_modules.assigners import AssignResult, MaxIoUAssigner
from mmdet.registry import TASK_UTILS
from torch import Tensor


@TASK_UTILS.register_module()
class DeviceMaxIoUAssigner(MaxIoUAssigner):
    """``MaxIoUAssigner`` whose assignment runs without waiting for the device.

    mmdet's low-quality matching loops over the ground truths in Python and asks
    ``gt_max_overlaps[i] >= min_pos_iou`` for each: one synchronisation per ground-truth box, per
    image, in both the RPN's and the R-CNN's assigner (Cityscapes images hold ~20 instances), and
    its boolean-mask assignments add more. Here the same rules are tensor operations: where
    several ground truths claim a prior in low-quality matching, the last one wins, as in mmdet's loop.
    """

    def assign_wrt_overlaps(self, overlaps: Tensor, gt_labels: Tensor) -> AssignResult:
        num_gts, num_priors = overlaps.shape
        if num_gts == 0 or num_priors == 0 or (self.match_low_quality and not self.gt_max_assign_all):
            return super().assign_wrt_overlaps(overlaps, gt_labels)
        max_overlaps, argmax_overlaps = overlaps.max(dim=0)
        low, high = (0, self.neg_iou_thr) if isinstance(self.neg_iou_thr, float) else self.neg_iou_thr
        assigned = torch.where((max_overlaps >= low) & (max_overlaps < high), 0, -1)
        assigned = torch.where(max_overlaps >= self.pos_iou_thr, argmax_overlaps + 1, assigned)
        if self.match_low_quality:  # every prior at a ground truth's best IoU goes to it
            gt_max_overlaps = overlaps.max(dim=1).values
            claims = (overlaps == gt_max_overlaps[:, None]) & (gt_max_overlaps >= self.min_pos_iou)[:, None]
            last_claim = num_gts - claims.flip(0).to(torch.uint8).argmax(dim=0)  # 1-based
            assigned = torch.where(claims.any(dim=0), last_claim, assigned)
        labels = torch.where(assigned > 0, gt_labels[(assigned - 1).clamp(min=0)], -1)
        return AssignResult(num_gts=num_gts, gt_inds=assigned, max_overlaps=max_overlaps, labels=labels)
