"""Export a trained model to ONNX (standard operators, onnxruntime without custom ops) with the
manifest that describes it, checked against PyTorch on a seeded input before it is kept."""
import copy
import os
import os.path as osp

import numpy as np
import torch
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, DefaultScope

from ..cityscapes.errors import UserError
from ..cityscapes.io import read_json, write_json
from ..cityscapes.labels import label_ids_of
from ..utils.checkpoint import check_fits, load_weights
from ..utils.config import model_family, test_metainfo
from .manifest import FORMAT, MANIFEST, MODEL, sha256
from .onnx_models import inference_session

# The largest |logit| difference between onnxruntime and PyTorch an export may have (float32
# kernels sum in another order; 1e-5 is typical).
TOLERANCE = 1e-3


class SemanticNetwork(torch.nn.Module):
    """A segmentor's network on a normalised image: backbone, neck and decode head (mmseg's
    ``_forward``), the logits at the decode head's resolution."""

    def __init__(self, segmentor):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, image):
        return self.segmentor._forward(image)


def test_image_shape(cfg):
    """(height, width) of the config's test images: its test pipeline's ``Resize`` scale, (w, h)."""
    for transform in cfg.test_dataloader.dataset.pipeline:
        if transform['type'] == 'Resize' and transform.get('scale'):
            width, height = transform['scale']
            return height, width
    raise UserError('the test pipeline has no Resize with a scale to take the input size from: pass --shape H W')


def build_model(cfg, checkpoint):
    """The config's model with the checkpoint's weights, in eval mode, on the CPU (SyncBN as BN)."""
    state, meta = load_weights(checkpoint)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = revert_sync_batchnorm(MODELS.build(copy.deepcopy(cfg.model)))  # mmseg's build edits its config
    check_fits(model, checkpoint, state, meta)
    model.load_state_dict(state, strict=True)
    return model.eval()


def export_settings(cfg, checkpoint, shape, dynamic, opset):
    """What an export is made from: the same settings give the same export."""
    return dict(source=dict(config=osp.abspath(cfg.filename), config_sha256=sha256(cfg.filename),
                            checkpoint=osp.abspath(checkpoint), checkpoint_sha256=sha256(checkpoint)),
                exporter=dict(torch=torch.__version__, opset=opset, dynamic_shape=dynamic, shape=list(shape)))


def export(cfg, checkpoint, out_dir, shape=None, dynamic=False, opset=17):
    """Write ``out_dir/model.onnx`` and ``out_dir/deploy.json``; return the manifest, or None when
    ``out_dir`` already holds this export. Nothing is replaced until the new model has matched
    PyTorch; an ``out_dir`` holding another export is refused."""
    task = model_family(cfg)
    if task != 'semantic':
        raise UserError(f'{cfg.filename}: exporting {task} models is not supported yet (semantic configs are)')
    if not osp.isfile(checkpoint):
        raise UserError(f'checkpoint not found: {checkpoint}')
    shape = tuple(shape or test_image_shape(cfg))
    settings = export_settings(cfg, checkpoint, shape, dynamic, opset)
    manifest_file, model_file = osp.join(out_dir, MANIFEST), osp.join(out_dir, MODEL)
    if osp.isfile(manifest_file):
        old = read_json(manifest_file)
        if {k: old.get(k) for k in settings} == settings and osp.isfile(model_file) and \
                sha256(model_file) == old.get('model_sha256'):
            return None
        if old.get('source', {}).get('checkpoint_sha256') != settings['source']['checkpoint_sha256']:
            raise UserError(f'{out_dir} holds the export of another checkpoint '
                            f'({old.get("source", {}).get("checkpoint")}): pass another --out or remove it')
    model = build_model(cfg, checkpoint)
    network = SemanticNetwork(model)
    image = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, *shape), dtype=np.float32))
    os.makedirs(out_dir, exist_ok=True)
    partial = f'{model_file}.partial-{os.getpid()}'
    try:
        with torch.no_grad():
            expected = network(image).numpy()
            axes = {'image': {0: 'batch', 2: 'height', 3: 'width'},
                    'logits': {0: 'batch', 2: 'logits_height', 3: 'logits_width'}} if dynamic else \
                {'image': {0: 'batch'}, 'logits': {0: 'batch'}}  # any batch size
            torch.onnx.export(network, (image,), partial, input_names=['image'], output_names=['logits'],
                              opset_version=opset, dynamo=False, dynamic_axes=axes)
        session = inference_session(partial)
        difference = float(np.abs(session.run(None, {'image': image.numpy()})[0] - expected).max())
        if not difference <= TOLERANCE:
            raise UserError(f'the exported model differs from PyTorch by {difference:.2e} (more than {TOLERANCE}) '
                            'on a seeded input; nothing was written')
        manifest = dict(format=FORMAT, task=task, model=MODEL, model_sha256=sha256(partial), **settings,
                        **semantic_contract(cfg, model, shape, dynamic, expected.shape),
                        check=dict(input=f'seeded standard normal 1x3x{shape[0]}x{shape[1]}',
                                   max_abs_logit_difference=difference))
        if osp.exists(manifest_file):
            os.remove(manifest_file)  # no manifest describes a half-replaced export
        os.replace(partial, model_file)
    finally:
        if osp.exists(partial):
            os.remove(partial)
    write_json(manifest, manifest_file, indent=2)
    return manifest


def semantic_contract(cfg, model, shape, dynamic, logits_shape):
    """The input and output a runtime must give and expect, and what the classes are."""
    preprocessor = cfg.model.data_preprocessor
    metainfo = test_metainfo(cfg)
    return dict(
        input=dict(name='image', shape=['batch', 3, 'height', 'width'] if dynamic else ['batch', 3, *shape],
                   layout='NCHW', dtype='float32', channels='RGB' if preprocessor.get('bgr_to_rgb') else 'BGR',
                   mean=list(preprocessor.mean), std=list(preprocessor.std),
                   meaning='(image - mean) / std per channel, from 0-255 pixel values'),
        output=dict(name='logits', shape=['batch', len(metainfo['classes']), 'logits_height', 'logits_width']
                    if dynamic else ['batch', *logits_shape[1:]],
                    meaning='class scores before softmax; resize bilinearly to the input size (align_corners='
                            f'{model.align_corners}); argmax over classes gives the class index'),
        classes=list(metainfo['classes']), label_ids=label_ids_of(metainfo['classes']),
        palette=[list(c) for c in metainfo.get('palette', [])])
