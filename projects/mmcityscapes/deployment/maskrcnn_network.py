"""Mask R-CNN as one graph of standard ONNX operators: mmdet's backbone, neck and heads with the
checkpoint's weights, and the test-time steps between them (proposals, NMS, RoI pooling per
pyramid level, class selection) written with operators that trace to TopK, NonMaxSuppression,
RoiAlign and NonZero. Each step computes what mmdet 3.3's ``predict`` computes (the code it mirrors
is named on it); pasting masks into the image stays outside the graph, in mmdet's mask head."""
from typing import Any, Sequence, Tuple

import torch
from mmdet.models.task_modules.coders.delta_xywh_bbox_coder import delta2bbox
from torch import Tensor
from torchvision.ops import nms, roi_align

OUTPUTS = ('boxes', 'scores', 'labels', 'mask_logits')


def batched_nms(boxes: Tensor, scores: Tensor, groups: Tensor, iou_threshold: float) -> Tensor:
    """Indices kept by NMS within each group, by decreasing score: mmcv's ``batched_nms`` (boxes
    of different groups moved apart by the largest coordinate + 1; the zero keeps an empty set of
    boxes valid, coordinates are clipped to >= 0)."""
    largest = torch.cat([boxes.reshape(-1), boxes.new_zeros(1)]).max()
    return nms(boxes + (groups.to(boxes) * (largest + 1))[:, None], scores, iou_threshold)


def decode(coder: Any, priors: Tensor, deltas: Tensor, image_shape: Sequence[int]) -> Tensor:
    """mmdet's ``DeltaXYWHBBoxCoder.decode`` for one image, with the ``wh_ratio_clip`` default
    the heads decode with (its ONNX branch is mmdet 2's)."""
    return delta2bbox(priors, deltas, coder.means, coder.stds, image_shape, 16 / 1000,
                      coder.clip_border, coder.add_ctr_clamp, coder.ctr_clamp)


class MaskRCNNNetwork(torch.nn.Module):
    """A normalised 1x3xHxW image -> ``OUTPUTS``: the detections' boxes (x1, y1, x2, y2 in input
    pixels), scores, labels (class indices) and 28x28 mask logits of their class.

    The input size is fixed at export: the anchors and per-level candidate counts are constants.
    """

    def __init__(self, detector: torch.nn.Module, image_shape: Sequence[int]) -> None:
        super().__init__()
        self.detector, self.image_shape = detector, tuple(image_shape)
        self.rpn_cfg, self.rcnn_cfg = detector.test_cfg.rpn, detector.test_cfg.rcnn
        for extractor in (detector.roi_head.bbox_roi_extractor, detector.roi_head.mask_roi_extractor):
            for layer in extractor.roi_layers:
                if getattr(layer, 'pool_mode', 'avg') != 'avg':
                    raise ValueError(f'RoIAlign pool_mode {layer.pool_mode!r}: only avg has an ONNX RoiAlign')

    def forward(self, image: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        features = self.detector.extract_feat(image)
        proposals = self.proposals(features)
        boxes, scores, labels = self.detections(features, proposals)
        return boxes, scores, labels, self.mask_logits(features, boxes, labels)

    def proposals(self, features: Tuple[Tensor]) -> Tensor:
        """mmdet's ``RPNHead._predict_by_feat_single`` and ``_bbox_post_process``."""
        head, cfg = self.detector.rpn_head, self.rpn_cfg
        cls_scores, bbox_preds = head(features)
        priors = head.prior_generator.grid_priors([f.shape[-2:] for f in features], device=features[0].device)
        boxes, scores, levels = [], [], []
        for level, (cls_score, bbox_pred, level_priors) in enumerate(zip(cls_scores, bbox_preds, priors)):
            level_scores = cls_score[0].permute(1, 2, 0).reshape(-1).sigmoid()
            deltas = bbox_pred[0].permute(1, 2, 0).reshape(-1, 4)
            count = level_scores.shape[0]  # static: the input size is fixed
            if 0 < cfg.get('nms_pre', -1) < count:
                level_scores, keep = level_scores.topk(cfg.nms_pre)
                deltas, level_priors = deltas[keep], level_priors[keep]
            boxes.append(decode(head.bbox_coder, level_priors, deltas, self.image_shape))
            scores.append(level_scores)
            levels.append(torch.full((level_scores.shape[0],), level, dtype=torch.long))
        boxes, scores, levels = torch.cat(boxes), torch.cat(scores), torch.cat(levels)
        if cfg.get('min_bbox_size', -1) >= 0:
            size = cfg.min_bbox_size
            valid = ((boxes[:, 2] - boxes[:, 0] > size) & (boxes[:, 3] - boxes[:, 1] > size)).nonzero()[:, 0]
            boxes, scores, levels = boxes[valid], scores[valid], levels[valid]
        keep = batched_nms(boxes, scores, levels, cfg.nms.iou_threshold)[:cfg.max_per_img]
        return boxes[keep]

    def pooled(self, extractor: torch.nn.Module, features: Tuple[Tensor], boxes: Tensor) -> Tensor:
        """mmdet's ``SingleRoIExtractor.forward`` for one image: each box pooled on its pyramid
        level (mmdet's own level mapping) by torchvision's RoIAlign, which exports to ONNX RoiAlign
        with ``half_pixel`` for mmcv's ``aligned=True``."""
        rois = torch.cat([boxes.new_zeros(boxes.shape[0], 1), boxes], dim=1)
        features = features[:extractor.num_inputs]
        levels = extractor.map_roi_levels(rois, len(features))
        height, width = extractor.roi_layers[0].output_size
        pooled = features[0].new_zeros(rois.shape[0], extractor.out_channels, height, width)
        for level, (layer, feature) in enumerate(zip(extractor.roi_layers, features)):
            index = (levels == level).nonzero()[:, 0]
            pooled = pooled.index_put((index,), roi_align(feature, rois[index], (height, width), layer.spatial_scale,
                                                          layer.sampling_ratio, layer.aligned))
        return pooled

    def detections(self, features: Tuple[Tensor], proposals: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """mmdet's ``StandardRoIHead.predict_bbox``, ``BBoxHead._predict_by_feat_single`` and
        ``multiclass_nms`` for one image, without rescaling."""
        roi_head, cfg = self.detector.roi_head, self.rcnn_cfg
        bbox_head = roi_head.bbox_head
        cls_score, bbox_pred = bbox_head(self.pooled(roi_head.bbox_roi_extractor, features, proposals))
        scores = cls_score.softmax(-1)[:, :-1]  # the last column is the background
        num_classes = scores.shape[1]
        if bbox_head.reg_class_agnostic:
            boxes = decode(bbox_head.bbox_coder, proposals, bbox_pred, self.image_shape)[:, None].expand(
                -1, num_classes, 4)
        else:
            boxes = decode(bbox_head.bbox_coder, proposals.repeat_interleave(num_classes, dim=0),
                           bbox_pred.reshape(-1, 4), self.image_shape)
        boxes, scores = boxes.reshape(-1, 4), scores.reshape(-1)
        labels = torch.arange(num_classes).repeat(proposals.shape[0])
        valid = (scores > cfg.score_thr).nonzero()[:, 0]
        boxes, scores, labels = boxes[valid], scores[valid], labels[valid]
        keep = batched_nms(boxes, scores, labels, cfg.nms.iou_threshold)
        if cfg.max_per_img > 0:
            keep = keep[:cfg.max_per_img]
        return boxes[keep], scores[keep], labels[keep]

    def mask_logits(self, features: Tuple[Tensor], boxes: Tensor, labels: Tensor) -> Tensor:
        """mmdet's ``StandardRoIHead.predict_mask``: the mask head's logits of each detection's class."""
        roi_head = self.detector.roi_head
        logits = roi_head.mask_head(self.pooled(roi_head.mask_roi_extractor, features, boxes))
        if roi_head.mask_head.class_agnostic:
            return logits[:, 0]
        return logits[torch.arange(logits.shape[0]), labels]
