# ddrnet_23-slim, 2x6 images, 120k iterations, 1024x1024 crops, Cityscapes fine.
# mmseg's real-time DDRNet-23-slim (77.84 mIoU in mmseg's model zoo, from its ImageNet weights,
# whose URL the backbone keeps) on this project's dataset root and metrics, with the validation
# loss.
_base_ = ['mmseg::ddrnet/ddrnet_23-slim_in1k-pre_2xb6-120k_cityscapes-1024x1024.py', '_base_/realtime_cityscapes.py']

train_dataloader = dict(dataset=dict(data_root={{_base_.cityscapes_root}}))
val_dataloader = dict(dataset=dict(data_root={{_base_.cityscapes_root}}))
test_dataloader = val_dataloader
val_evaluator = {{_base_.realtime_val_evaluator}}
test_evaluator = {{_base_.realtime_test_evaluator}}
auto_scale_lr = dict(enable=False, base_batch_size=12)  # mmseg's lr is for 2 GPUs x 6 images (--auto-scale-lr)
default_hooks = dict(checkpoint=dict(save_best='mIoU', rule='greater', max_keep_ckpts=1))
