# deeplabv3_r50-d8, 4x2 images, 80k iterations, 512x1024 crops, Cityscapes fine.
# mmseg's own config (79.3 mIoU in mmseg's model zoo) with this project's metric set and validation loss.
_base_ = 'mmseg::deeplabv3/deeplabv3_r50-d8_4xb2-80k_cityscapes-512x1024.py'
custom_imports = dict(imports=['projects.mmcityscapes.components'], allow_failed_imports=False)

data_root = r"""{{$CITYSCAPES_ROOT:data/cityscapes}}"""  # any path: quotes, with or without a final /
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='SegmentationMetric', per_class=False)  # compact logs
test_evaluator = dict(_delete_=True, type='SegmentationMetric')  # + per-class values in the tables
default_hooks = dict(checkpoint=dict(save_best='mIoU', rule='greater', max_keep_ckpts=1))
custom_hooks = [dict(type='ValLossHook')]
