"""Speed and memory of a config's model, optionally against the model the reproduced projects
used (configs/README.md, References).

    python tools/analysis_tools/benchmark.py CONFIG [--train | --infer] [--shape 1024 2048] [--batch 2]
        [--iters 10] [--warmup 3] [--vs] [--amp] [--channels-last] [--profile OUT.md [--top 15]]
    python tools/analysis_tools/benchmark.py CONFIG --infer --backend onnxruntime [--precision int8] [--batch 1]
        [--export-input uint8] [--split]
    python tools/analysis_tools/benchmark.py CONFIG --data [--samples 50]

Model mode feeds the same seeded random batches (images and, for --train, labels: a random label
map, or a few random boxes with masks) to the config's model (mmdet/mmseg ``train_step`` /
``test_step``, including its data preprocessor) and, with ``--vs``, in the same process to the
seeds' model: torchvision ``maskrcnn_resnet50_fpn`` (instance configs), torchvision
``deeplabv3_resnet50`` (ASPP heads) or segmentation-models-pytorch ``Unet`` with the config's
encoder (``UNetHead``; ``pip install -r requirements/optional.txt``). Weights are random: speed
does not depend on them. Inputs are not resized or padded: the data preprocessor's ``size`` is set
to ``--shape``. Reports images/s, the latency of a batch (median and 95th percentile) and the peak
memory of the timed iterations beyond what is allocated before them (``PeakMemory``).
``--backend onnxruntime`` (``--infer``) also exports the same model to ONNX at ``--shape`` and runs
the export through the same ``test_step`` with onnxruntime (``ONNXSegmentor``, ``ONNXDetector``:
for Mask R-CNN the graph's detections, masks pasted by mmdet's mask head). ``--precision int8``
also quantizes that export as tools/deployment/quantize.py does (calibrated on the benchmark's own
random batches: calibration sets the scales, not the speed) and times it in a third row.
``--split`` (semantic, ``--infer``, CPU) times each model's whole step once more, split as
``test_step`` does it: decoding a PNG of the batch in memory (OpenCV), the data preprocessor (and
an export's input conversion), the network (``_forward`` or the onnxruntime session) and the
postprocessing (logits resized to the image and their argmax, or a labels export's map taken as
the image's): the median ms of each and the images/s from the decoded image to the labels.
``--profile`` then runs the timed batches once more under the torch profiler, per model, and
writes host-device synchronisations and kernel launches per step and the top operators by device
and by host time to a markdown file; on the CPU also the time of each kind of convolution (kernel,
dilation, groups). An export is profiled by onnxruntime's profiler instead: its operators, the
convolutions split the same way (its trace and the graph it ran are kept beside OUT.md).

Data mode times the config's train pipeline on its train dataset (``$CITYSCAPES_ROOT``): samples
per second in one process, i.e. per dataloader worker.
"""
import argparse
from dataclasses import fields

import torch
from mmengine.config import DictAction

from mmcityscapes.analysis.benchmark import BenchmarkOptions, benchmark, benchmark_data
from mmcityscapes.common.errors import run_tool
from mmcityscapes.common.io import check_writable
from mmcityscapes.utils.config import load_config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--train', action='store_true', help='time training steps (default)')
    mode.add_argument('--infer', action='store_true', help='time inference')
    mode.add_argument('--data', action='store_true', help='time the train data pipeline')
    model = parser.add_argument_group('model mode')
    model.add_argument('--shape', type=int, nargs=2, default=[1024, 2048], metavar=('H', 'W'))
    model.add_argument('--batch', type=int, default=2)
    model.add_argument('--iters', type=int, default=10, help='timed iterations')
    model.add_argument('--warmup', type=int, default=3, help='untimed iterations first')
    model.add_argument('--vs', action='store_true', help="also run the reproduced projects' model on the same inputs")
    model.add_argument('--backend', choices=['pytorch', 'onnxruntime'], default='pytorch',
                       help='onnxruntime: also the ONNX export of the same model (--infer)')
    model.add_argument('--precision', choices=['float32', 'int8'], default='float32',
                       help='with --backend onnxruntime: int8 also times the export quantized to int8')
    model.add_argument('--amp', action='store_true', help='autocast (float16 on CUDA, bfloat16 on CPU)')
    model.add_argument('--channels-last', action='store_true')
    model.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    model.add_argument('--export-input', choices=['float32', 'uint8'],
                       help='with --backend onnxruntime, semantic: the export takes the normalised image (float32, '
                       'the default) or the decoded one (uint8)')
    model.add_argument('--split', action='store_true',
                       help='--infer, semantic: also each model\'s whole step split into decode, preprocess, network '
                       'and postprocess')
    model.add_argument('--profile', metavar='OUT.md', help='also profile the timed batches into this file')
    model.add_argument('--top', type=int, default=15, help='operators per profile table')
    data = parser.add_argument_group('data mode')
    data.add_argument('--samples', type=int, default=50)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args()


def main():
    args = parse_args()
    if args.profile:
        check_writable(args.profile, '--profile', folder=False)
    cfg = load_config(args.config, args.cfg_options)
    if args.data:
        return benchmark_data(cfg, args.samples)
    benchmark(cfg, BenchmarkOptions(**{field.name: getattr(args, field.name) for field in fields(BenchmarkOptions)}))


if __name__ == '__main__':
    run_tool(main)
