# configs/panoptic_fusion.py on the generated 256x512 mini-Cityscapes, fusing the two models
# `make demo` trains (tools/demo.py: work_dirs/demo/); tests pass their own checkpoints.
_base_ = '../panoptic_fusion.py'

model = dict(
    thing_config='{{fileDirname}}/maskrcnn_r18_mini.py', thing_checkpoint='work_dirs/demo/maskrcnn_r18_mini/',
    stuff_config='{{fileDirname}}/deeplabv3_r18_mini.py', stuff_checkpoint='work_dirs/demo/deeplabv3_r18_mini/')
test_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 256), keep_ratio=True),  # the two mini models' test size
    dict(type='LoadCityscapesPanopticAnnotations'),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]))
