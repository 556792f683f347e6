"""Export a trained model to ONNX for onnxruntime (standard operators, no custom-op library).

    python tools/deployment/export.py configs/unet_r34.py work_dirs/unet_r34/epoch_10.pth --out exports/unet_r34
    python tools/test.py configs/unet_r34.py exports/unet_r34          # the same tables, run by onnxruntime
    python tools/infer.py configs/unet_r34.py exports/unet_r34 IMAGES --out results/unet_r34
    python tools/deployment/export.py configs/maskrcnn_stage3.py work_dirs/maskrcnn_stage3/epoch_8.pth \
        --out exports/maskrcnn_stage3

Writes ``OUT/model.onnx`` and ``OUT/deploy.json``: input size, layout, channel order, mean/std,
classes and their Cityscapes label ids, the outputs' meaning, the source config and checkpoint
(with sha256), exporter and opset, and the largest differences from PyTorch on a seeded input (the
export is refused above ``TOLERANCE`` of mmcityscapes/deployment/export.py). The input size is the
config's test size unless ``--shape`` is given.

A semantic model (U-Nets, DeepLabV3s, the real-time models) takes the normalised NCHW float32
image, or with ``--input uint8`` the decoded NHWC BGR image as ``cv2.imread`` gives it (the data
preprocessor's channel order, mean and std inside the graph); it gives the label map at the input
size (``--output labels``, uint8: the logits resized as mmseg resizes them, and their argmax) or
the decode head's logits (``--output logits``). Labels are the default, as in mmdeploy: resizing
19 channels of float logits to the full frame and their argmax is most of a real-time model's
step on the host, and onnxruntime does it several times faster; configs that test by sliding
windows export logits (the windows' logits are merged), as does whatever needs class scores (TTA,
the panoptic fusion). ``--dynamic-shape`` accepts any batch and size. A Mask R-CNN (every stage) maps one normalised
image of the export's size to its detections (boxes, scores, labels, 28x28 mask logits), with
standard ONNX operators only (NonMaxSuppression, RoiAlign, TopK); masks are pasted after the graph.
"""
import argparse

from mmcityscapes.apis.model_source import ModelSource
from mmcityscapes.common.errors import run_tool
from mmcityscapes.common.io import check_writable
from mmcityscapes.deployment.export import export
from mmcityscapes.engine.runner.runtime import prepare_runtime
from mmcityscapes.utils.config import load_config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='export directory')
    parser.add_argument('--shape', nargs=2, type=int, metavar=('H', 'W'), help='input size (default: the test size)')
    parser.add_argument('--dynamic-shape', action='store_true', help='accept any batch and input size')
    parser.add_argument('--input', choices=['float32', 'uint8'],
                        help='semantic: the normalised image (float32, the default) or the decoded one (uint8)')
    parser.add_argument('--output', choices=['labels', 'logits'],
                        help='semantic: the label map (the default where the config tests whole images) or logits')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset (default 17)')
    return parser.parse_args()


def main():
    args = parse_args()
    check_writable(args.out, '--out')
    # read once; a work dir: its best checkpoint; missing, truncated or corrupt: one line
    checkpoint = ModelSource(args.checkpoint).require_checkpoint('export')
    cfg = load_config(args.config)
    prepare_runtime(cfg, splits=())
    manifest = export(cfg, checkpoint, args.out, args.shape, args.dynamic_shape, args.opset, args.input, args.output)
    if manifest is None:
        print(f'{args.out} is up to date: exported from this config and checkpoint with these settings')
    else:
        outputs = manifest['output']
        outputs = f'{outputs["name"]} {outputs["dtype"]} {outputs["shape"]}' if 'shape' in outputs else \
            ', '.join(outputs)
        checked = ', '.join(f'{k} {v:.2%}' if k == 'labels_agreement' else f'{k} {v:.1e}' if isinstance(v, float)
                            else f'{k} {v}' for k, v in manifest['check'].items() if k != 'input')
        input_ = manifest['input']
        print(f'{args.out}/model.onnx: {input_["dtype"]} {input_["shape"]} -> {outputs}; against PyTorch: {checked}')


if __name__ == '__main__':
    run_tool(main)
