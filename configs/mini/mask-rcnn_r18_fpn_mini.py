# The demo's instance model: mmdet's Cityscapes Mask R-CNN with a ResNet-18 FPN and narrow heads,
# trained from scratch on small images (the generated 256x512 mini-Cityscapes) on a CPU.
_base_ = '../_base_/mask-rcnn_r50_fpn_cityscapes.py'

img_scale = (512, 256)  # (w, h): a quarter of Cityscapes' 2048x1024
max_iters = 500
channels = 64  # FPN / RoI feature width (256 in the full model)
model = dict(
    backbone=dict(depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=channels),
    rpn_head=dict(
        in_channels=channels, feat_channels=channels,
        anchor_generator=dict(scales=[4])),  # 16-256 px anchors for 4x smaller images
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(in_channels=channels, fc_out_channels=256),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(in_channels=channels, conv_out_channels=channels)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=500), rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=500)))
load_from = None  # the COCO checkpoint does not fit a ResNet-18

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=[(512, 200), img_scale], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=2, num_workers=2, sampler=dict(type='InfiniteSampler'),
    dataset=dict(dataset=dict(pipeline=train_pipeline)))
val_dataloader = dict(num_workers=2, dataset=dict(pipeline=test_pipeline))
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
