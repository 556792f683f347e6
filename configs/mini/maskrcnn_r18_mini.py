# The demo's instance model: mmdet's Cityscapes Mask R-CNN with a ResNet-18 FPN and narrow heads,
# trained from scratch on small images (the generated 256x512 mini-Cityscapes) on a CPU.
_base_ = ['../_base_/mask-rcnn_r50_fpn_cityscapes.py', '../_base_/models/mask-rcnn_r18_fpn_small.py']

max_iters = 500
model = dict(
    backbone=dict(depth=18, init_cfg=None, frozen_stages=-1, norm_eval=False),  # from scratch: train BN
    neck={{_base_.small_model.neck}},
    rpn_head=dict(in_channels=64, feat_channels=64,
                  anchor_generator=dict(scales=[4])),  # 16-256 px anchors for 4x smaller images
    roi_head={{_base_.small_model.roi_head}},
    train_cfg={{_base_.small_model.train_cfg}},
    test_cfg={{_base_.small_model.test_cfg}})
load_from = None  # the COCO checkpoint does not fit a ResNet-18

train_dataloader = dict(
    batch_size=2, num_workers=2, sampler=dict(type='InfiniteSampler'),
    dataset=dict(dataset=dict(pipeline={{_base_.small_train_pipeline}})))
val_dataloader = dict(num_workers=2, dataset=dict(pipeline={{_base_.small_test_pipeline}}))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=5e-4, weight_decay=0.05),
                     clip_grad=dict(max_norm=10))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, milestones=[int(max_iters * 0.8)], gamma=0.1),
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
