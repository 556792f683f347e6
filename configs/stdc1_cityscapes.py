# stdc1, 4x12 images, 80k iterations, 512x1024 crops, Cityscapes fine.
# mmseg's real-time STDC1 (71.82 mIoU in mmseg's model zoo, trained from scratch) on this project's
# dataset root and metrics, with the validation loss.
_base_ = ['mmseg::stdc/stdc1_4xb12-80k_cityscapes-512x1024.py', '_base_/realtime_cityscapes.py']

train_dataloader = dict(dataset=dict(data_root={{_base_.cityscapes_root}}))
val_dataloader = dict(dataset=dict(data_root={{_base_.cityscapes_root}}))
test_dataloader = val_dataloader
val_evaluator = {{_base_.realtime_val_evaluator}}
test_evaluator = {{_base_.realtime_test_evaluator}}
auto_scale_lr = dict(enable=False, base_batch_size=48)  # mmseg's lr is for 4 GPUs x 12 images (--auto-scale-lr)
default_hooks = dict(checkpoint=dict(save_best='mIoU', rule='greater', max_keep_ckpts=1))
