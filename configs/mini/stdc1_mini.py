# configs/stdc1_cityscapes.py on the generated 256x512 mini-Cityscapes: small images and crops, a
# short schedule (tests: training, ONNX export and int8 quantization of the real-time models).
_base_ = ['../stdc1_cityscapes.py', '_base_/realtime_mini.py']

model = dict(
    data_preprocessor=dict(size={{_base_.mini_crop}}))
train_dataloader = dict(batch_size=2, num_workers=2, persistent_workers=False,
                        dataset=dict(pipeline={{_base_.mini_train_pipeline}}))
val_dataloader = dict(num_workers=2, persistent_workers=False, dataset=dict(pipeline={{_base_.mini_test_pipeline}}))
test_dataloader = val_dataloader
train_cfg = dict(max_iters={{_base_.mini_iters}}, val_interval={{_base_.mini_iters}})
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval={{_base_.mini_iters}}))
