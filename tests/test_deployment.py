"""ONNX export of every semantic config: onnxruntime gives PyTorch's logits; exports are atomic,
re-runs say so, and broken or foreign exports stop with one line."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS

import mmcityscapes.components  # noqa: F401
from mmcityscapes.cityscapes.errors import UserError
from mmcityscapes.deployment.export import export
from mmcityscapes.deployment.manifest import read_export
from mmcityscapes.deployment.onnx_models import inference_session

from conftest import REPO

SHAPE = (128, 256)


def random_checkpoint(config, path):
    """The config's model with seeded random weights (BN statistics too), saved as an mmengine
    checkpoint at ``path``; returns the model."""
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.pretrained, cfg.model.backbone.init_cfg = None, None
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # not the identity
        bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 1.5)
    torch.save(dict(state_dict=model.state_dict(), meta={}), path)
    return cfg, model


@pytest.mark.parametrize('config', [
    'configs/unet_r34.py', 'configs/deeplabv3_r50.py', 'configs/mini/deeplabv3_r18_mini.py',
    pytest.param('configs/unet_mobilenetv2.py', marks=pytest.mark.slow),
    pytest.param('configs/deeplabv3_r50_tv.py', marks=pytest.mark.slow),
])  # unet_resnext50.py: the U-Net path of unet_r34.py with a larger encoder
def test_onnxruntime_gives_pytorch_s_logits(config, tmp_path):
    cfg, model = random_checkpoint(config, tmp_path / 'weights.pth')
    manifest = export(cfg, str(tmp_path / 'weights.pth'), str(tmp_path / 'export'), shape=SHAPE)
    assert manifest['input']['shape'] == ['batch', 3, *SHAPE] and len(manifest['classes']) == 19
    assert manifest['label_ids'][:3] == [7, 8, 11]  # road, sidewalk, building
    image = torch.from_numpy(np.random.default_rng(1).standard_normal((1, 3, *SHAPE), dtype=np.float32))
    with torch.no_grad():
        expected = model._forward(image).numpy()
    got = inference_session(str(tmp_path / 'export' / 'model.onnx')).run(None, {'image': image.numpy()})[0]
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-4
    assert np.mean(got.argmax(1) == expected.argmax(1)) >= 0.9999


def test_dynamic_shape_export_takes_other_sizes(tmp_path):
    cfg, model = random_checkpoint('configs/unet_r34.py', tmp_path / 'weights.pth')
    manifest = export(cfg, str(tmp_path / 'weights.pth'), str(tmp_path / 'export'), shape=SHAPE, dynamic=True)
    assert manifest['input']['shape'] == ['batch', 3, 'height', 'width']
    session = inference_session(str(tmp_path / 'export' / 'model.onnx'))
    image = torch.randn(2, 3, 64, 192)
    with torch.no_grad():
        expected = model._forward(image).numpy()
    assert np.abs(session.run(None, {'image': image.numpy()})[0] - expected).max() <= 1e-4


def test_rerun_is_a_no_op_and_a_foreign_or_broken_export_is_refused(tmp_path):
    cfg, _ = random_checkpoint('configs/mini/deeplabv3_r18_mini.py', tmp_path / 'weights.pth')
    out = str(tmp_path / 'export')
    first = export(cfg, str(tmp_path / 'weights.pth'), out, shape=SHAPE)
    assert export(cfg, str(tmp_path / 'weights.pth'), out, shape=SHAPE) is None  # the same inputs: up to date
    assert read_export(out)[1] == first == json.load(open(osp.join(out, 'deploy.json')))

    random_checkpoint('configs/mini/deeplabv3_r18_mini.py', tmp_path / 'other.pth')
    other = torch.load(tmp_path / 'other.pth', weights_only=False)
    other['state_dict'] = {k: v + 1 if v.is_floating_point() else v for k, v in other['state_dict'].items()}
    torch.save(other, tmp_path / 'other.pth')
    with pytest.raises(UserError, match='holds the export of another checkpoint'):
        export(cfg, str(tmp_path / 'other.pth'), out, shape=SHAPE)

    model = osp.join(out, 'model.onnx')
    data = open(model, 'rb').read()
    open(model, 'wb').write(data[:len(data) // 2])  # truncated
    with pytest.raises(UserError, match='is not the model .*deploy.json describes'):
        read_export(out)
    with pytest.raises(UserError, match='holds no deploy.json'):
        read_export(str(tmp_path))
