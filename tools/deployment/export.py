"""Export a trained model to ONNX for onnxruntime (standard operators, no custom-op library).

    python tools/deployment/export.py configs/unet_r34.py work_dirs/unet_r34/epoch_10.pth --out exports/unet_r34
    python tools/test.py configs/unet_r34.py exports/unet_r34          # the same tables, run by onnxruntime
    python tools/infer.py configs/unet_r34.py exports/unet_r34 IMAGES --out results/unet_r34

Writes ``OUT/model.onnx`` (normalised NCHW image -> decode-head logits) and ``OUT/deploy.json``:
input size, layout, channel order, mean/std, classes and their Cityscapes label ids, the output's
meaning, the source config and checkpoint (with sha256), exporter and opset, and the largest
difference from PyTorch on a seeded input (the export is refused above 1e-3). The input size is the
config's test size unless ``--shape`` is given; ``--dynamic-shape`` accepts any size.
Semantic configs (U-Nets, DeepLabV3s) are supported.
"""
import argparse

from mmcityscapes.cityscapes.errors import run_tool
from mmcityscapes.deployment.export import export
from mmcityscapes.utils.config import load_config
from mmcityscapes.utils.runtime import prepare_runtime


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='export directory')
    parser.add_argument('--shape', nargs=2, type=int, metavar=('H', 'W'), help='input size (default: the test size)')
    parser.add_argument('--dynamic-shape', action='store_true', help='accept any batch and input size')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset (default 17)')
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = load_config(args.config)
    prepare_runtime(cfg, splits=())
    manifest = export(cfg, args.checkpoint, args.out, args.shape, args.dynamic_shape, args.opset)
    if manifest is None:
        print(f'{args.out} is up to date: exported from this config and checkpoint with these settings')
    else:
        print(f'{args.out}/model.onnx: {manifest["input"]["shape"]} -> {manifest["output"]["shape"]}, '
              f'largest difference from PyTorch {manifest["check"]["max_abs_logit_difference"]:.1e}')


if __name__ == '__main__':
    run_tool(main)
