# configs/maskrcnn_stage2.py with a small model on the generated 256x512 mini-Cityscapes, 1 epoch
# (tests and a quick end-to-end run of configs/mini/maskrcnn_staged_mini.py).
_base_ = ['../maskrcnn_stage2.py', '../_base_/models/mask-rcnn_r18_fpn_small.py']

model = {{_base_.small_model}}
train_dataloader = dict(batch_size=2, num_workers=1,
                        dataset=dict(dataset=dict(pipeline={{_base_.small_train_pipeline}})))
val_dataloader = dict(num_workers=1, persistent_workers=False, dataset=dict(pipeline={{_base_.small_test_pipeline}}))
test_dataloader = val_dataloader
load_from = 'work_dirs/maskrcnn_stage1_mini/'
train_cfg = dict(max_epochs=1)
# a 20-iteration warmup: the full schedule's 500 would cover a whole run on the small dataset
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20)]
