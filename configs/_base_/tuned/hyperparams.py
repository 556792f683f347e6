# IoU thresholds and FPN gradient flow for stage 2. Defaults are mmdet's;
# tools/tune.py overwrites this file with the best trial of its Optuna study.
rcnn_fg_iou_thr = 0.5  # RoI head: foreground if IoU >= this, background otherwise
rpn_pos_iou_thr = 0.7
rpn_neg_iou_thr = 0.3
fpn_lr_mult = 1.0  # FPN gradient flow: 1.0 trainable, 0.1 reduced lr, 0.0 frozen
