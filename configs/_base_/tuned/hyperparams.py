# IoU thresholds and FPN gradient flow for stage 2. Defaults are mmdet's, used by stages 2 and 3
# run by hand. tools/tune.py writes its best trial to work_dirs/tune_<config>/hyperparams.py; copy it here to use it.
rcnn_fg_iou_thr = 0.5  # RoI head: foreground if IoU >= this, background otherwise
rpn_pos_iou_thr = 0.7
rpn_neg_iou_thr = 0.3
fpn_lr_mult = 1.0  # FPN gradient flow: 1.0 trainable, 0.1 reduced lr, 0.0 frozen
