# mask-rcnn_r50_fpn stage 3 (all layers, lr/10), 8x1 images, 4 epochs, 800-1024 scale, Cityscapes fine.
# Stage 3: every layer trainable (the backbone too) at a tenth of the learning rate, from the
# stage-2 weights. BN statistics stay frozen: 1-4 images per GPU are too few to estimate them.
_base_ = './maskrcnn_stage2.py'

load_from = 'work_dirs/maskrcnn_stage2/'  # stage 2's best checkpoint (StagedRunner passes its own)
model = dict(backbone=dict(frozen_stages=-1))
optim_wrapper = dict(optimizer=dict(lr=0.001))  # stage 1/2 lr (0.01) / 10

max_epochs = 4
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[3], gamma=0.1)]
