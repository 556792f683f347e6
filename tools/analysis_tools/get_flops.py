"""FLOPs and parameters of a config's model at a given input shape (mmengine's analysis).

    python tools/analysis_tools/get_flops.py CONFIG [--shape 1024 2048] [--table]

Both families: the model's tensor forward (backbone, neck and heads; for Mask R-CNN the RPN and
the RoI heads on the proposals of a blank image, as mmdet's get_flops counts them). Weights are
not loaded.
"""
import argparse
import os.path as osp

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope

from mmcityscapes.common.errors import run_tool
from mmcityscapes.utils.config import load_config


def data_samples(scope, height, width):
    """One sample's metadata, which the heads read (image and batch shapes)."""
    meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
                batch_input_shape=(height, width), scale_factor=(1., 1.))
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample
        return [DetDataSample(metainfo=meta)]
    from mmseg.structures import SegDataSample
    return [SegDataSample(metainfo=meta)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, default=[1024, 2048], metavar=('H', 'W'))
    parser.add_argument('--table', action='store_true', help='also print the per-module table')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    args = parser.parse_args()
    cfg = load_config(args.config, args.cfg_options)
    scope = cfg.get('default_scope', 'mmdet')
    init_default_scope(scope)
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    height, width = args.shape
    samples = data_samples(scope, height, width)

    class TensorForward(torch.nn.Module):  # what the analysis traces: image in, raw outputs out
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, inputs):
            return self.model._forward(inputs, samples)

    with torch.no_grad():
        info = get_model_complexity_info(TensorForward(), inputs=(torch.zeros(1, 3, height, width),),
                                         show_table=args.table, show_arch=False)
    if args.table:
        print(info['out_table'])
    print(f'{osp.basename(args.config)} at {height}x{width}: {info["flops_str"]} FLOPs, '
          f'{info["params_str"]} parameters ({info["params"]} exactly)')


if __name__ == '__main__':
    run_tool(main)
