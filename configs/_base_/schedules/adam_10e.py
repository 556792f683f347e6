# Adam at a constant lr of 1e-4 for 10 epochs, validated every epoch (the U-Net CV recipe,
# configs/README.md): mmseg's runtime and this project's Cityscapes data, with the epoch-based
# sampler and logging such a schedule needs.
# The best checkpoint is kept by val mIoU; the U-Net CV recipe kept it by val loss, which ValLossHook
# provides: default_hooks.checkpoint.save_best='loss', default_hooks.checkpoint.rule='less'.
_base_ = ['../datasets/cityscapes_semantic.py', 'mmseg::_base_/default_runtime.py']

train_dataloader = dict(sampler=dict(type='DefaultSampler', shuffle=True))  # epochs, not mmseg's infinite sampler
log_processor = dict(by_epoch=True)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4))
param_scheduler = []
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=1, max_keep_ckpts=1,
                    save_best='mIoU', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
custom_hooks = [dict(type='ValLossHook')]
