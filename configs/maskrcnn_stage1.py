# mask-rcnn_r50_fpn stage 1 (frozen backbone), 8x1 images, 4 epochs, 800-1024 scale, Cityscapes fine.
# Stage 1: mmdet's Cityscapes Mask R-CNN with the stage-0 backbone, frozen (all four stages and
# BN statistics); FPN, RPN and RoI heads train for 4 epochs on the full train split.
_base_ = '_base_/mask-rcnn_r50_fpn_cityscapes.py'
custom_imports = dict(imports=['mmcityscapes.components'], allow_failed_imports=False)

# Stage 0's best checkpoint: a work dir stands for the best checkpoint trained into it
# (`python tools/train.py configs/maskrcnn_stage0.py`); StagedRunner passes its own stage 0.
stage0_checkpoint = 'work_dirs/maskrcnn_stage0/'
model = dict(backbone=dict(frozen_stages=4, norm_eval=True, init_cfg=None))
custom_hooks = [dict(type='CoarsePretrainHook', checkpoint=stage0_checkpoint)]
load_from = None  # the backbone comes from stage 0, not from mmdet's COCO checkpoint

max_epochs = 4
train_dataloader = dict(dataset=dict(times=1))  # epochs over the 2975 images (mmdet repeats 8x)
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[3], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(save_best='coco/segm_mAP', rule='greater', max_keep_ckpts=1))
auto_scale_lr = dict(enable=False, base_batch_size=8)  # lr 0.01 is for 8 GPUs x 1 image
