"""Export a trained model to ONNX (standard operators, onnxruntime without custom ops) with the
manifest that describes it, checked against PyTorch on a seeded input before it is kept."""
import os
import os.path as osp
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config

from mmcityscapes.cityscapes.labels import label_ids_of
from mmcityscapes.common.errors import UserError
from mmcityscapes.common.io import atomic_output, read_json, remove_stale_temporaries, write_json
from mmcityscapes.datasets.layout import test_metainfo
from mmcityscapes.deployment.maskrcnn_network import OUTPUTS, MaskRCNNNetwork
from mmcityscapes.deployment.onnx_models import inference_session
from mmcityscapes.utils.checkpoint import Checkpoint
from mmcityscapes.utils.manifest import FORMAT, MANIFEST, MODEL, SEMANTIC_INPUTS, SEMANTIC_OUTPUTS, sha256
from mmcityscapes.utils.model import build_model
from mmcityscapes.utils.tasks import model_family

# The largest difference between onnxruntime and PyTorch an export may have on its check input
# (float32 kernels sum in another order: |logit| differences of 1e-5 and box differences of
# 1e-4 px are typical); logits' limits scale with their magnitude above 1 (a model trained a few
# steps from scratch may give logits of 1e4, whose float32 rounding alone is 1e-3).
TOLERANCE = dict(logits=1e-3, boxes=1e-2, scores=1e-4, mask_logits=1e-3)
RELATIVE = ('logits', 'mask_logits')
# The share of pixels whose label an export must keep: a label differs only where two classes'
# logits are within those float32 differences of each other.
LABELS_AGREEMENT = 0.999


class SemanticNetwork(torch.nn.Module):
    """A segmentor's network (mmseg's ``_forward``: backbone, neck, decode head) with the host's
    pre- and post-processing it is asked to take in.

    Args:
        segmentor (torch.nn.Module): the mmseg segmentor.
        input (str): ``'float32'``: the normalised NCHW image; ``'uint8'``: the decoded NHWC BGR
            image as ``cv2.imread`` gives it, ordered and normalised as the data preprocessor does.
            Defaults to ``'float32'``.
        output (str): ``'logits'``: the decode head's logits at its resolution; ``'labels'``: the
            logits resized to the input size as mmseg does (bilinear, the decode head's
            ``align_corners``) and their argmax, as uint8. Defaults to ``'logits'``.
    """

    def __init__(self, segmentor: torch.nn.Module, input: str = 'float32', output: str = 'logits') -> None:
        super().__init__()
        self.segmentor, self.input, self.output = segmentor, input, output
        preprocessor = segmentor.data_preprocessor
        self.channels = [2, 1, 0] if preprocessor.channel_conversion else [0, 1, 2]
        normalised = preprocessor._enable_normalize
        self.register_buffer('mean', preprocessor.mean.view(1, 3, 1, 1).clone() if normalised else torch.zeros(
            1, 3, 1, 1), persistent=False)
        self.register_buffer('std', preprocessor.std.view(1, 3, 1, 1).clone() if normalised else torch.ones(
            1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.input == 'uint8':
            image = (image.permute(0, 3, 1, 2)[:, self.channels].float() - self.mean) / self.std
        logits = self.segmentor._forward(image)
        if self.output == 'logits':
            return logits
        logits = torch.nn.functional.interpolate(logits, size=image.shape[2:], mode='bilinear',
                                                 align_corners=self.segmentor.align_corners)
        return logits.argmax(1).to(torch.uint8)


class BinnedAdaptiveAvgPool2d(torch.nn.Module):
    """``nn.AdaptiveAvgPool2d`` for a fixed input size as one slice and mean per output bin (the
    same bins: rows ``floor(i h / n)`` to ``ceil((i + 1) h / n)``). The ONNX exporter takes adaptive
    pooling only when the output size divides the input size: Fast-SCNN's pyramid pooling (3x3 and
    6x6 bins of a 32x64 map at 1024x2048) does not."""

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = int(x.shape[-2]), int(x.shape[-1])  # constants of the exported graph
        size = self.output_size if isinstance(self.output_size, (tuple, list)) else (self.output_size,) * 2
        rows, cols = (n or side for n, side in zip(size, (height, width)))
        if height % rows == 0 and width % cols == 0:
            return torch.nn.functional.adaptive_avg_pool2d(x, (rows, cols))
        bins = lambda n, side: [(i * side // n, -(-(i + 1) * side // n)) for i in range(n)]  # noqa: E731
        return torch.cat([torch.cat([x[..., y0:y1, x0:x1].mean((-2, -1), keepdim=True) for x0, x1 in bins(cols, width)],
                                    -1) for y0, y1 in bins(rows, height)], -2)


def with_binned_pooling(network: torch.nn.Module) -> int:
    """Replace every ``nn.AdaptiveAvgPool2d`` of ``network`` by ``BinnedAdaptiveAvgPool2d``; how many."""
    replaced = 0
    for module in list(network.modules()):
        for name, child in module.named_children():
            if isinstance(child, torch.nn.AdaptiveAvgPool2d):
                setattr(module, name, BinnedAdaptiveAvgPool2d(child.output_size))
                replaced += 1
    return replaced


def check_pooling_of_any_size(cfg: Config, model: torch.nn.Module) -> None:
    """Stop unless every adaptive average pooling of ``model`` has an ONNX form for inputs of any
    size: global pooling does; bins need the input size (``BinnedAdaptiveAvgPool2d`` is for one size)."""
    for module in model.modules():
        if isinstance(module, torch.nn.AdaptiveAvgPool2d):
            size = module.output_size if isinstance(module.output_size, (tuple, list)) else (module.output_size,) * 2
            if tuple(size) != (1, 1):
                raise UserError(f'{cfg.filename}: adaptive average pooling to {size[0]}x{size[1]} bins has no ONNX '
                                'form for inputs of any size: export for one size (leave out --dynamic-shape)')


def test_resize(cfg: Config) -> Optional[dict]:
    """The ``Resize`` with a scale of the config's test pipeline, which sets its test image size, or None."""
    return next((transform for transform in cfg.test_dataloader.dataset.pipeline
                 if transform['type'] == 'Resize' and transform.get('scale')), None)


def slides_windows(cfg: Config) -> bool:
    """Whether the config's model tests by sliding windows (mmseg's ``test_cfg.mode='slide'``)."""
    return (cfg.model.get('test_cfg') or {}).get('mode', 'whole') != 'whole'


def test_image_shape(cfg: Config) -> Tuple[int, int]:
    """(height, width) of the config's test images: its test pipeline's ``Resize`` scale, (w, h)."""
    resize = test_resize(cfg)
    if resize is None:
        raise UserError('the test pipeline has no Resize with a scale to take the input size from: pass --shape H W')
    width, height = resize['scale']
    return height, width


def export_settings(cfg: Config, checkpoint: str, shape: Sequence[int], dynamic: bool, opset: int, input: str,
                    output: str) -> dict:
    """What an export is made from: the same settings give the same export."""
    return dict(source=dict(config=osp.abspath(cfg.filename), config_sha256=sha256(cfg.filename),
                            checkpoint=osp.abspath(checkpoint), checkpoint_sha256=sha256(checkpoint)),
                exporter=dict(torch=torch.__version__, opset=opset, dynamic_shape=dynamic, shape=list(shape),
                              input=input, output=output))


def semantic_kinds(cfg: Config, input: Optional[str], output: Optional[str]) -> Tuple[str, str]:
    """(input, output) of a semantic export: the ones asked for, checked, or the defaults."""
    slides = slides_windows(cfg)
    input, output = input or SEMANTIC_INPUTS[0], output or ('logits' if slides else 'labels')
    if input not in SEMANTIC_INPUTS or output not in SEMANTIC_OUTPUTS:
        raise UserError(f'a semantic export takes {" or ".join(SEMANTIC_INPUTS)} and gives '
                        f'{" or ".join(SEMANTIC_OUTPUTS)}, not {input} -> {output}')
    if output == 'labels' and slides:
        raise UserError(f'{cfg.filename} tests by sliding windows, whose logits are merged on the host: '
                        'export it with --output logits')
    return input, output


def export(cfg: Config, checkpoint: Checkpoint, out_dir: str, shape: Optional[Sequence[int]] = None,
           dynamic: bool = False, opset: int = 17, input: Optional[str] = None,
           output: Optional[str] = None) -> Optional[dict]:
    """Write ``out_dir/model.onnx`` and ``out_dir/deploy.json`` of the model of ``cfg`` with the
    ``checkpoint``'s tensors;
    return the manifest, or None when ``out_dir`` already holds this export. Nothing is replaced
    until the new model has matched PyTorch; an ``out_dir`` holding another export is refused.
    ``input`` and ``output`` (``SEMANTIC_INPUTS``, ``SEMANTIC_OUTPUTS``) choose what a semantic
    export takes and gives; a Mask R-CNN takes the normalised image and gives its detections."""
    task = model_family(cfg)
    if task == 'instance' and (input or output):
        raise UserError(f'{cfg.filename}: --input and --output choose what a semantic export takes and gives; a '
                        'Mask R-CNN export takes the normalised image and gives its detections')
    if task == 'panoptic':
        raise UserError(f'{cfg.filename}: panoptic models are not exported (mmdet\'s fusion head pastes instances '
                        'one by one in a Python loop whose branches depend on the masks, which a traced graph would '
                        'freeze); export the Mask R-CNN and the semantic model of configs/panoptic_fusion.py, '
                        'which runs the two exports')
    if task == 'instance' and dynamic:
        raise UserError(f'{cfg.filename}: Mask R-CNN is exported for one input size (its anchors are constants '
                        'of the graph): leave out --dynamic-shape')
    shape = tuple(shape or test_image_shape(cfg))
    divisor = cfg.model.data_preprocessor.get('pad_size_divisor', 1) if task == 'instance' else 1
    if any(side % divisor for side in shape):
        raise UserError(f'{cfg.filename}: a Mask R-CNN export takes images as they enter the network, padded to '
                        f'multiples of {divisor} (pad_size_divisor): {shape[0]}x{shape[1]} is not one')
    kinds = semantic_kinds(cfg, input, output) if task == 'semantic' else ('float32', 'detections')
    settings = export_settings(cfg, checkpoint.path, shape, dynamic, opset, *kinds)
    manifest_file, model_file = osp.join(out_dir, MANIFEST), osp.join(out_dir, MODEL)
    if osp.isdir(out_dir):
        remove_stale_temporaries(out_dir)  # the partial model of an export that was killed
    if osp.isfile(manifest_file):
        old = read_json(manifest_file)
        if {k: old.get(k) for k in settings} == settings and osp.isfile(model_file) and \
                sha256(model_file) == old.get('model_sha256'):
            return None
        if old.get('source', {}).get('checkpoint_sha256') != settings['source']['checkpoint_sha256']:
            raise UserError(f'{out_dir} holds the export of another checkpoint '
                            f'({old.get("source", {}).get("checkpoint")}): pass another --out or remove it')
    model = build_model(cfg, checkpoint=checkpoint)
    if dynamic:
        check_pooling_of_any_size(cfg, model)
    rng = np.random.default_rng(0)
    if task == 'semantic':
        network, outputs = SemanticNetwork(model, *kinds).eval(), [kinds[1]]
        height, width = (2, 3) if kinds[0] == 'float32' else (1, 2)
        axes = {'image': {0: 'batch', height: 'height', width: 'width'},
                kinds[1]: {0: 'batch', 2: 'logits_height', 3: 'logits_width'} if kinds[1] == 'logits' else
                {0: 'batch', 1: 'height', 2: 'width'}} if dynamic else \
            {'image': {0: 'batch'}, kinds[1]: {0: 'batch'}}  # any batch size
    else:
        network, outputs, axes = MaskRCNNNetwork(model, shape).eval(), list(OUTPUTS), None  # one image
    if kinds[0] == 'uint8':
        image = torch.from_numpy(rng.integers(0, 256, (1, *shape, 3), dtype=np.uint8))
        check_input = f'seeded uniform uint8 1x{shape[0]}x{shape[1]}x3'
    else:
        image = torch.from_numpy(rng.standard_normal((1, 3, *shape), dtype=np.float32))
        check_input = f'seeded standard normal 1x3x{shape[0]}x{shape[1]}'
    os.makedirs(out_dir, exist_ok=True)
    with atomic_output(model_file) as partial:
        with torch.no_grad():
            expected = [t.numpy() for t in as_tuple(network(image))]  # the model as trained
            if not dynamic:
                with_binned_pooling(network)
            torch.onnx.export(network, (image,), partial, input_names=['image'], output_names=outputs,
                              opset_version=opset, dynamo=False, dynamic_axes=axes)
        got = inference_session(partial).run(None, {'image': image.numpy()})
        check = dict(input=check_input, **compare(outputs, got, expected))
        contract = semantic_contract(cfg, model, shape, dynamic, expected[0].shape, *kinds) if task == 'semantic' else \
            instance_contract(cfg, shape)
        manifest = dict(format=FORMAT, task=task, model=MODEL, model_sha256=sha256(partial), **settings, **contract,
                        check=check)
        if osp.exists(manifest_file):
            os.remove(manifest_file)  # no manifest describes a half-replaced export
    write_json(manifest, manifest_file, indent=2)
    return manifest


def as_tuple(outputs: Any) -> tuple:
    return outputs if isinstance(outputs, tuple) else (outputs,)


def compare(names: Sequence[str], got: Sequence[np.ndarray], expected: Sequence[np.ndarray]) -> dict:
    """The largest difference of each onnxruntime output from PyTorch's (for labels: the share that
    agree); stops when a difference is over its ``TOLERANCE``, fewer labels than
    ``LABELS_AGREEMENT`` agree or the detections are not the same."""
    got, expected = dict(zip(names, got)), dict(zip(names, expected))
    if 'boxes' in names:
        expected = {name: value[same_order(got, expected)] for name, value in expected.items()}
    differences = {}
    for name in names:
        if got[name].dtype.kind == 'f':
            difference = float(np.abs(got[name] - expected[name]).max()) if got[name].size else 0.0
            scale = max(1.0, float(np.abs(expected[name]).max(initial=0))) if name in RELATIVE else 1.0
            if not difference <= TOLERANCE[name] * scale:
                raise UserError(f'the exported model\'s {name} differ from PyTorch by {difference:.2e} (more than '
                                f'{TOLERANCE[name] * scale:.2e}) on a seeded input; nothing was written')
            differences[f'max_abs_{name}_difference'] = difference
        elif name == 'labels':
            agreement = float(np.mean(got[name] == expected[name]))
            if agreement < LABELS_AGREEMENT:
                raise UserError(f'the exported model\'s labels agree with PyTorch\'s on {agreement:.2%} of the pixels '
                                f'(less than {LABELS_AGREEMENT:.1%}) of a seeded input; nothing was written')
            differences['labels_agreement'] = agreement
    if 'boxes' in names:
        differences['detections'] = len(got['boxes'])
    return differences


def same_order(got: Dict[str, np.ndarray], expected: Dict[str, np.ndarray]) -> np.ndarray:
    """The index in ``expected`` of each detection of ``got``: the detection of its label with the
    nearest box (detections of scores equal to float precision may come in another order, as
    neither NMS keeps the order of ties). Stops when the detections differ in number or labels."""
    distance = np.abs(got['boxes'][:, None] - expected['boxes'][None]).max(-1, initial=0)
    distance[got['labels'][:, None] != expected['labels'][None]] = np.inf
    order = distance.argmin(1) if distance.size else np.zeros(0, int)
    if len(got['boxes']) != len(expected['boxes']) or sorted(order) != list(range(len(order))) or \
            np.isinf(distance[np.arange(len(order)), order]).any():
        raise UserError(f'the exported model gives other detections than PyTorch ({len(got["boxes"])} against '
                        f'{len(expected["boxes"])}, or other labels) on a seeded input; nothing was written')
    return order


def semantic_contract(cfg: Config, model: torch.nn.Module, shape: Sequence[int], dynamic: bool,
                      logits_shape: Sequence[int], input: str, output: str) -> dict:
    """The input and output a runtime must give and expect, and what the classes are. ``channels``,
    ``mean`` and ``std`` are the model's normalisation: the host's for a float32 input, the graph's
    own for a uint8 one."""
    preprocessor = cfg.model.data_preprocessor
    metainfo = test_metainfo(cfg)
    size = ['height', 'width'] if dynamic else list(shape)
    normalisation = dict(channels='RGB' if preprocessor.get('bgr_to_rgb') else 'BGR', mean=list(preprocessor.mean),
                         std=list(preprocessor.std))
    if input == 'uint8':
        input = dict(name='image', shape=['batch', *size, 3], layout='NHWC', dtype='uint8', **normalisation,
                     meaning='the decoded image (0-255, BGR as cv2.imread gives it); the graph orders the channels '
                             f'as {normalisation["channels"]} and takes (image - mean) / std per channel')
    else:
        input = dict(name='image', shape=['batch', 3, *size], layout='NCHW', dtype='float32', **normalisation,
                     meaning='(image - mean) / std per channel, from 0-255 pixel values')
    if output == 'labels':
        output = dict(name='labels', shape=['batch', *size], dtype='uint8',
                      meaning='class index of each input pixel: the logits resized bilinearly to the input size '
                              f'(align_corners={model.align_corners}) and their argmax')
    else:
        output = dict(name='logits', shape=['batch', len(metainfo['classes']), 'logits_height', 'logits_width']
                      if dynamic else ['batch', *logits_shape[1:]], dtype='float32',
                      meaning='class scores before softmax; resize bilinearly to the input size (align_corners='
                              f'{model.align_corners}); argmax over classes gives the class index')
    return dict(input=input, output=output, classes=list(metainfo['classes']),
                label_ids=label_ids_of(metainfo['classes']), palette=[list(c) for c in metainfo.get('palette', [])])


def instance_contract(cfg: Config, shape: Sequence[int]) -> dict:
    """The input and outputs of an exported Mask R-CNN, the test settings built into the graph and
    what the classes are."""
    preprocessor, test_cfg = cfg.model.data_preprocessor, cfg.model.test_cfg
    metainfo = test_metainfo(cfg)
    return dict(
        input=dict(name='image', shape=[1, 3, *shape], layout='NCHW', dtype='float32',
                   channels='RGB' if preprocessor.get('bgr_to_rgb') else 'BGR', mean=list(preprocessor.mean),
                   std=list(preprocessor.std), meaning='(image - mean) / std per channel, from 0-255 pixel values, '
                   f'the image resized to exactly {shape[0]}x{shape[1]}'),
        output=dict(
            boxes=dict(shape=['detections', 4], dtype='float32', meaning='x1, y1, x2, y2 in input pixels'),
            scores=dict(shape=['detections'], dtype='float32',
                        meaning='class score; detections come by decreasing score'),
            labels=dict(shape=['detections'], dtype='int64', meaning='class index into classes'),
            mask_logits=dict(shape=['detections', 28, 28], dtype='float32',
                             meaning='mask logits of the box; paste sigmoid(logits) into the box bilinearly '
                                     f'(mmdet _do_paste_mask) and keep >= {test_cfg.rcnn.mask_thr_binary}')),
        test_cfg=dict(rpn=test_cfg.rpn.to_dict(), rcnn=test_cfg.rcnn.to_dict()),
        classes=list(metainfo['classes']), label_ids=label_ids_of(metainfo['classes']),
        palette=[list(c) for c in metainfo.get('palette', [])])
