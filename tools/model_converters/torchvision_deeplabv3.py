"""Convert torchvision ``deeplabv3_resnet50`` weights for configs/deeplabv3_r50_tv.py.

    python tools/model_converters/torchvision_deeplabv3.py deeplabv3_resnet50_coco-cd0a2569.pth \
        checkpoints/deeplabv3_r50_tv_coco.pth
    python tools/train.py configs/deeplabv3_r50_tv.py --cfg-options load_from=checkpoints/deeplabv3_r50_tv_coco.pth

The seed project fine-tunes torchvision's COCO-trained weights
(https://download.pytorch.org/models/deeplabv3_resnet50_coco-cd0a2569.pth); their 21-class
classifiers do not fit Cityscapes' 19 classes, so training skips them with mmengine's size-mismatch
warning and starts them from scratch. The output is an mmengine checkpoint (``state_dict``, ``meta``).
"""
import argparse
import os.path as osp

import torch

from mmcityscapes.common.errors import UserError, run_tool
from mmcityscapes.common.io import atomic_output
from mmcityscapes.models.torchvision_aspp_head import convert_torchvision_deeplabv3
from mmcityscapes.utils.checkpoint import Checkpoint


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='torchvision state dict (.pth)')
    parser.add_argument('dst', help='mmengine checkpoint to write')
    args = parser.parse_args()
    if osp.exists(args.dst):
        raise UserError(f'{args.dst} exists; remove it or choose another name')
    weights = Checkpoint.read(args.src).state
    try:
        state_dict = convert_torchvision_deeplabv3(weights)
    except KeyError as e:
        raise UserError(f'cannot convert {args.src}: {e.args[0]}') from None
    with atomic_output(args.dst) as tmp:
        torch.save(dict(state_dict=state_dict, meta=dict(converted_from=osp.abspath(args.src))), tmp)
    print(f'{len(state_dict)} tensors written to {args.dst}')


if __name__ == '__main__':
    run_tool(main)
