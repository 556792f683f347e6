# configs/maskrcnn_stage3.py with a small model on the generated 256x512 mini-Cityscapes, 1 epoch
# (tests and a quick end-to-end run of configs/mini/maskrcnn_staged_mini.py).
_base_ = ['../maskrcnn_stage3.py', '_base_/maskrcnn_stage_mini.py']

model = {{_base_.mini_model}}
train_dataloader = {{_base_.mini_train_dataloader}}
val_dataloader = {{_base_.mini_val_dataloader}}
test_dataloader = val_dataloader
load_from = 'work_dirs/maskrcnn_stage2_mini/'
train_cfg = {{_base_.mini_train_cfg}}
