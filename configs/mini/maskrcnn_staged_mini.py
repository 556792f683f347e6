# configs/maskrcnn_staged.py on the mini stage configs: 1 epoch per stage, a 2-trial search of
# 1 epoch each (tests and a quick end-to-end run on the generated mini-Cityscapes).
_base_ = '../maskrcnn_staged.py'
stages = ['maskrcnn_stage0_mini.py', 'maskrcnn_stage1_mini.py', 'maskrcnn_stage2_mini.py', 'maskrcnn_stage3_mini.py']
tuning = dict(trials=2, epochs=1, heartbeat=2)  # a killed trial is retried after 4 s
