# unet_r34 (U-Net decoder, ResNet-34 encoder), 1x4 images, 10 epochs, 512x1024 crops, Cityscapes fine.
# The U-Net CV recipe (configs/README.md, References: 66.8 mIoU on val): Adam lr 1e-4, cross-entropy ignoring 255.
_base_ = ['_base_/models/unet_r34.py', '_base_/schedules/adam_10e.py']
train_dataloader = dict(batch_size=4)
auto_scale_lr = dict(enable=False, base_batch_size=4)  # lr 1e-4 is for 1 GPU x 4 images (--auto-scale-lr)
