# mask-rcnn_r50_fpn stage 2 (tuned anchors, IoUs), 8x1 images, 6 epochs, 800-1024 scale, Cityscapes fine.
# Stage 2: stage 1 + k-means anchors + Optuna-tuned IoU thresholds and FPN gradient flow, 6 epochs
# from the stage-1 weights with the backbone still frozen. By hand it takes the values of
# configs/_base_/tuned/ (mmdet's defaults until you copy tuned ones there); configs/maskrcnn_staged.py
# fits and tunes them in its own work dir and applies them to stages 2 and 3.
_base_ = ['./maskrcnn_stage1.py', '_base_/tuned/anchors.py', '_base_/tuned/hyperparams.py']

load_from = 'work_dirs/maskrcnn_stage1/'  # stage 1's best checkpoint (StagedRunner passes its own)
model = dict(
    rpn_head=dict(anchor_generator=dict(scales={{_base_.anchor_scales}}, ratios={{_base_.anchor_ratios}})),
    train_cfg=dict(
        rpn=dict(assigner=dict(pos_iou_thr={{_base_.rpn_pos_iou_thr}}, neg_iou_thr={{_base_.rpn_neg_iou_thr}})),
        rcnn=dict(assigner=dict(pos_iou_thr={{_base_.rcnn_fg_iou_thr}}, neg_iou_thr={{_base_.rcnn_fg_iou_thr}},
                                min_pos_iou={{_base_.rcnn_fg_iou_thr}}))))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'neck': dict(lr_mult={{_base_.fpn_lr_mult}}, decay_mult={{_base_.fpn_lr_mult}})}))

max_epochs = 6
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[5], gamma=0.1)
]
