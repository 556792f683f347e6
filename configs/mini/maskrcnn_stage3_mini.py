# configs/maskrcnn_stage3.py with a small model on the generated 256x512 mini-Cityscapes, 1 epoch
# (tests and a quick end-to-end run of configs/mini/maskrcnn_staged_mini.py).
_base_ = ['../maskrcnn_stage3.py', '../_base_/models/mask-rcnn_r18_fpn_small.py']

model = {{_base_.small_model}}
train_dataloader = dict(batch_size=2, num_workers=1,
                        dataset=dict(dataset=dict(pipeline={{_base_.small_train_pipeline}})))
val_dataloader = dict(num_workers=1, persistent_workers=False, dataset=dict(pipeline={{_base_.small_test_pipeline}}))
test_dataloader = val_dataloader
load_from = 'work_dirs/maskrcnn_stage2_mini/'
train_cfg = dict(max_epochs=1)
