# deeplabv3_r50-d8, 4x2 images, 80k iterations, 512x1024 crops, Cityscapes fine.
# mmseg's own config (79.3 mIoU in mmseg's model zoo), built from the same bases on this project's dataset
# base (its metric set), with the validation loss.
_base_ = [
    'mmseg::_base_/models/deeplabv3_r50-d8.py', '_base_/datasets/cityscapes_semantic.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_80k.py'
]
custom_imports = dict(imports=['mmcityscapes.components'], allow_failed_imports=False)

crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
auto_scale_lr = dict(enable=False, base_batch_size=8)  # lr 0.01 is mmseg's for 4 GPUs x 2 images (--auto-scale-lr)
default_hooks = dict(checkpoint=dict(save_best='mIoU', rule='greater', max_keep_ckpts=1))
custom_hooks = [dict(type='ValLossHook')]
