"""Quantize a float32 export to int8 with onnxruntime, keeping it only if it stays accurate.

    python tools/deployment/quantize.py configs/deeplabv3_r50.py exports/deeplabv3_r50 --out exports/deeplabv3_r50_int8
    python tools/test.py configs/deeplabv3_r50.py exports/deeplabv3_r50_int8        # as any export

Static quantization (QDQ, uint8 activations, per-channel int8 weights; ``quant_pre_process``
first) calibrated on ``--calib-images`` training images read by the config's test pipeline, as the
export receives them; for Mask R-CNN the convolutions and matrix products only (RoiAlign,
NonMaxSuppression and TopK stay float). Then the float32 and the int8 export are tested on the
config's test split (``--eval-images N``: its first N images) and their accuracy printed (mIoU;
COCO segm AP and Cityscapes AP). When int8 loses more than ``--max-drop`` points nothing is
written, unless ``--force``. ``OUT`` is an export like any other (``model.onnx``, ``deploy.json``
with the precision, calibration and accuracy), which tools/test.py, tools/infer.py and the
benchmark run unchanged. A fixed-size export of another size than the config's test size is
calibrated and tested at its own size (the test pipeline's Resize scale set to it).
"""
import argparse

from mmengine.config import DictAction

from mmcityscapes.common.errors import run_tool
from mmcityscapes.common.io import check_writable
from mmcityscapes.deployment.quantize import METHODS, quantize
from mmcityscapes.utils.config import load_config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('export', help='the float32 export directory (tools/deployment/export.py)')
    parser.add_argument('--out', required=True, help='the int8 export directory')
    parser.add_argument('--calib-images', type=int, default=32, help='training images to calibrate on')
    parser.add_argument('--method', choices=METHODS, default='minmax', help='calibration method')
    parser.add_argument('--max-drop', type=float, default=1.0, help='most accuracy points int8 may lose')
    parser.add_argument('--eval-images', type=int, help='test on the first N test images only')
    parser.add_argument('--force', action='store_true', help='write the int8 export whatever its accuracy')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args()


def main():
    args = parse_args()
    check_writable(args.out, '--out')
    cfg = load_config(args.config, args.cfg_options)
    manifest = quantize(cfg, args.export, args.out, args.calib_images, args.method, args.max_drop,
                        args.eval_images, args.force)
    quantization = manifest['quantization']
    print(f'{args.out}/model.onnx: int8 ({quantization["method"]} calibration on {quantization["calibration"]})')


if __name__ == '__main__':
    run_tool(main)
