"""ONNX export of every model family: onnxruntime gives PyTorch's logits and mmdet's Mask R-CNN
detections; exports are atomic, re-runs say so, and broken or foreign exports stop with one line."""
import copy
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner

import mmcityscapes.components  # noqa: F401  (registers the plugin's models)
from mmcityscapes.apis.model_source import ModelSource
from mmcityscapes.common.errors import UserError
from mmcityscapes.deployment.export import export
from mmcityscapes.deployment.onnx_models import inference_session
from mmcityscapes.utils.checkpoint import Checkpoint
from mmcityscapes.utils.manifest import check_matches, read_export

from conftest import REPO

SHAPE = (128, 256)


def random_checkpoint(config, path):
    """The config's model with seeded random weights (BN statistics too), saved as an mmengine
    checkpoint at ``path``; returns the model."""
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.backbone.init_cfg = None
    if 'pretrained' in cfg.model:  # mmseg's
        cfg.model.pretrained = None
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = revert_sync_batchnorm(MODELS.build(copy.deepcopy(cfg.model))).eval()
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # not the identity
        bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 1.5)
    if cfg.default_scope == 'mmdet':  # class scores spread over (0, 1), not all near 1/9: no near-ties to order
        model.roi_head.bbox_head.fc_cls.weight.data *= 10
    torch.save(dict(state_dict=model.state_dict(), meta={}), path)
    return cfg, model


@pytest.mark.parametrize('config', [
    'configs/unet_r34.py', 'configs/deeplabv3_r50.py', 'configs/mini/deeplabv3_r18_mini.py',
    pytest.param('configs/unet_mobilenetv2.py', marks=pytest.mark.slow),
    pytest.param('configs/deeplabv3_r50_tv.py', marks=pytest.mark.slow),
])  # unet_resnext50.py: the U-Net path of unet_r34.py with a larger encoder
def test_onnxruntime_gives_pytorch_s_logits(config, tmp_path):
    cfg, model = random_checkpoint(config, tmp_path / 'weights.pth')
    manifest = export(cfg, Checkpoint.read(str(tmp_path / 'weights.pth')), str(tmp_path / 'export'), shape=SHAPE,
                      output='logits')
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
    manifest = export(cfg, Checkpoint.read(str(tmp_path / 'weights.pth')), str(tmp_path / 'export'), shape=SHAPE,
                      dynamic=True, output='logits')
    assert manifest['input']['shape'] == ['batch', 3, 'height', 'width']
    session = inference_session(str(tmp_path / 'export' / 'model.onnx'))
    image = torch.randn(2, 3, 64, 192)
    with torch.no_grad():
        expected = model._forward(image).numpy()
    assert np.abs(session.run(None, {'image': image.numpy()})[0] - expected).max() <= 1e-4


def test_rerun_is_a_no_op_and_a_foreign_or_broken_export_is_refused(tmp_path):
    cfg, _ = random_checkpoint('configs/mini/deeplabv3_r18_mini.py', tmp_path / 'weights.pth')
    out = str(tmp_path / 'export')
    first = export(cfg, Checkpoint.read(str(tmp_path / 'weights.pth')), out, shape=SHAPE)
    # the same inputs: up to date
    assert export(cfg, Checkpoint.read(str(tmp_path / 'weights.pth')), out, shape=SHAPE) is None
    assert read_export(out)[1] == first == json.load(open(osp.join(out, 'deploy.json')))

    dead = 2 ** 22 + 12345  # above the largest pid Linux allows: no such process
    (tmp_path / 'export' / f'.tmp{dead}_model.onnx').write_bytes(b'half an export killed with -9')
    # its leftover is removed
    assert export(cfg, Checkpoint.read(str(tmp_path / 'weights.pth')), out, shape=SHAPE) is None
    assert sorted(p.name for p in (tmp_path / 'export').iterdir()) == ['deploy.json', 'model.onnx']

    random_checkpoint('configs/mini/deeplabv3_r18_mini.py', tmp_path / 'other.pth')
    other = torch.load(tmp_path / 'other.pth', weights_only=False)
    other['state_dict'] = {k: v + 1 if v.is_floating_point() else v for k, v in other['state_dict'].items()}
    torch.save(other, tmp_path / 'other.pth')
    with pytest.raises(UserError, match='holds the export of another checkpoint'):
        export(cfg, Checkpoint.read(str(tmp_path / 'other.pth')), out, shape=SHAPE)

    model = osp.join(out, 'model.onnx')
    data = open(model, 'rb').read()
    open(model, 'wb').write(data[:len(data) // 2])  # truncated
    with pytest.raises(UserError, match='is not the model .*deploy.json describes'):
        read_export(out)
    with pytest.raises(UserError, match='holds no deploy.json'):
        read_export(str(tmp_path))


def test_labels_and_uint8_exports_give_mmseg_s_labels_of_the_logits_export(tmp_path):
    """The default export's labels are mmseg's resize + argmax of the logits export's logits, and the
    uint8-in export's labels of the decoded image are the float32-in export's of the normalised one
    (pixels of near-equal class scores aside)."""
    from mmseg.models.utils import resize
    cfg, _ = random_checkpoint('configs/mini/fast_scnn_mini.py', tmp_path / 'weights.pth')
    checkpoint = Checkpoint.read(str(tmp_path / 'weights.pth'))
    exports = dict(logits=dict(output='logits'), labels={}, uint8=dict(input='uint8'))
    manifests = {name: export(cfg, checkpoint, str(tmp_path / name), shape=SHAPE, **options)
                 for name, options in exports.items()}
    assert manifests['labels']['output']['name'] == 'labels' and manifests['labels']['input']['dtype'] == 'float32'
    assert manifests['uint8']['input']['shape'] == ['batch', *SHAPE, 3]
    assert manifests['uint8']['check']['labels_agreement'] >= 0.999
    sessions = {name: inference_session(str(tmp_path / name / 'model.onnx')) for name in exports}
    preprocessor = cfg.model.data_preprocessor
    image = np.random.default_rng(1).integers(0, 256, (2, *SHAPE, 3), dtype=np.uint8)  # BGR, as decoded
    normalised = ((image[..., ::-1] - np.array(preprocessor.mean)) / np.array(preprocessor.std)).astype(np.float32)
    normalised = np.ascontiguousarray(normalised.transpose(0, 3, 1, 2))
    logits = torch.from_numpy(sessions['logits'].run(None, {'image': normalised})[0])
    resized = resize(logits, size=SHAPE, mode='bilinear', align_corners=False)
    top2 = resized.topk(2, 1).values
    decided = (top2[:, 0] - top2[:, 1] > 1e-4).numpy()  # not a near-tie
    labels = sessions['labels'].run(None, {'image': normalised})[0]
    assert labels.dtype == np.uint8 and labels.shape == (2, *SHAPE)
    assert np.array_equal(labels[decided], resized.argmax(1).numpy()[decided]) and decided.mean() > 0.9
    assert np.array_equal(sessions['uint8'].run(None, {'image': image})[0][decided], labels[decided])


def test_uint8_labels_export_of_any_size(tmp_path):
    """--dynamic-shape with the decoded image in and labels out: a label map of each input's size.
    Fast-SCNN's pyramid pooling has no ONNX form for inputs of any size: one line."""
    cfg, _ = random_checkpoint('configs/mini/fast_scnn_mini.py', tmp_path / 'fast_scnn.pth')
    with pytest.raises(UserError, match=r'adaptive average pooling to 2x2 bins has no ONNX form .* --dynamic-shape'):
        export(cfg, Checkpoint.read(str(tmp_path / 'fast_scnn.pth')), str(tmp_path / 'fast_scnn'), dynamic=True)
    assert not osp.exists(tmp_path / 'fast_scnn')
    cfg, _ = random_checkpoint('configs/unet_r34.py', tmp_path / 'weights.pth')
    export(cfg, Checkpoint.read(str(tmp_path / 'weights.pth')), str(tmp_path / 'export'), shape=SHAPE, dynamic=True,
           input='uint8')
    session = inference_session(str(tmp_path / 'export' / 'model.onnx'))
    for shape in ((1, 64, 192, 3), (2, 96, 64, 3)):
        image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
        assert session.run(None, {'image': image})[0].shape == shape[:3]


def test_what_an_export_cannot_take_or_give_is_refused(tmp_path):
    """Labels from a config that slides windows, --input/--output for a Mask R-CNN, a manifest of
    an input kind no runtime takes, class scores from a labels export (TTA, the panoptic fusion):
    one line each."""
    from mmcityscapes.panoptic.fusion import PanopticFusion
    cfg, _ = random_checkpoint('configs/mini/fast_scnn_mini.py', tmp_path / 'weights.pth')
    checkpoint = Checkpoint.read(str(tmp_path / 'weights.pth'))
    sliding = copy.deepcopy(cfg)
    sliding.model.test_cfg = dict(mode='slide', crop_size=(64, 64), stride=(48, 48))
    with pytest.raises(UserError, match='tests by sliding windows.*--output logits'):
        export(sliding, checkpoint, str(tmp_path / 'slide'), shape=SHAPE, output='labels')
    assert export(sliding, checkpoint, str(tmp_path / 'slide'), shape=SHAPE)['output']['name'] == 'logits'
    instance, _ = random_checkpoint('configs/mini/maskrcnn_r18_mini.py', tmp_path / 'maskrcnn.pth')
    with pytest.raises(UserError, match='a Mask R-CNN export takes the normalised image'):
        export(instance, Checkpoint.read(str(tmp_path / 'maskrcnn.pth')), str(tmp_path / 'mask'), shape=SHAPE,
               input='uint8')
    export(cfg, checkpoint, str(tmp_path / 'labels'), shape=SHAPE)
    with pytest.raises(UserError, match='--tta takes class scores, and .*labels gives labels: export it with --output'):
        ModelSource(str(tmp_path / 'labels')).require_logits('--tta')
    manifest_file = tmp_path / 'labels' / 'deploy.json'
    manifest = json.load(open(manifest_file))
    manifest['input']['dtype'] = 'float16'  # a kind no runtime model here takes
    with pytest.raises(UserError, match=r'deploy.json describes a float16 input and a labels output; a semantic '
                                        r'export takes float32 or uint8 and gives labels or logits'):
        check_matches(manifest, str(manifest_file), 'semantic', manifest['classes'], manifest['input']['mean'],
                      manifest['input']['std'], manifest['input']['channels'] == 'RGB')
    with pytest.raises(UserError, match='the panoptic fusion takes class scores'):
        PanopticFusion.build_part(osp.join(REPO, 'configs/mini/fast_scnn_mini.py'), str(tmp_path / 'labels'),
                                  'semantic', ('road',))


def same_detections(ours, theirs):
    """The index in ``theirs`` of each detection of ``ours``, after checking that both are the same
    detections: equal labels, boxes within 0.01 px, scores within 1e-4. Detections of scores equal
    to float precision may come in another order (neither NMS keeps the order of ties)."""
    distance = (ours.bboxes[:, None] - theirs.bboxes[None]).abs().amax(-1)
    distance[ours.labels[:, None] != theirs.labels[None]] = float('inf')
    order = distance.argmin(1)
    assert sorted(order.tolist()) == list(range(len(theirs)))
    assert distance[torch.arange(len(ours)), order].max() <= 0.01
    assert (ours.scores - theirs.scores[order]).abs().max() <= 1e-4
    return order


@pytest.mark.parametrize('config, scale', [
    ('configs/mini/maskrcnn_r18_mini.py', (512, 256)),
    ('configs/mini/maskrcnn_r18_mini.py', (1024, 512)),  # 2x: boxes rescaled, masks pasted at 1/2
])  # The R50 stages run the same graph code (stage 0 is a semantic config). Their random heads give all
# boxes nearly one score, so which of two overlapping boxes NMS keeps is decided by float rounding.
def test_exported_maskrcnn_gives_mmdet_s_detections(config, scale, mini_root, monkeypatch, tmp_path):
    """Random weights (every box scores above the threshold: 100 detections an image, NMS decides
    which): the export's detections, after mmdet pastes them, are mmdet's on the mini val images."""
    monkeypatch.setenv('CITYSCAPES_ROOT', f'{mini_root}/')
    cfg, model = random_checkpoint(config, tmp_path / 'weights.pth')
    cfg.test_dataloader.dataset.pipeline[1].scale = scale
    manifest = export(cfg, Checkpoint.read(str(tmp_path / 'weights.pth')), str(tmp_path / 'export'))
    assert manifest['input']['shape'] == [1, 3, scale[1], scale[0]] and len(manifest['classes']) == 8
    assert list(manifest['output']) == ['boxes', 'scores', 'labels', 'mask_logits']
    assert manifest['label_ids'][:2] == [24, 25]  # person, rider
    with DefaultScope.overwrite_default_scope('mmdet'):
        exported = ModelSource(str(tmp_path / 'export')).build(cfg)
        images = 0
        for batch in Runner.build_dataloader(cfg.test_dataloader):
            with torch.no_grad():
                ours, theirs = (m.test_step(copy.deepcopy(batch))[0].pred_instances for m in (exported, model))
            assert len(ours) == len(theirs) == 100
            order = same_detections(ours, theirs)
            assert ours.masks.shape == theirs.masks.shape == (100, 256, 512)  # pasted into the original image
            assert (ours.masks == theirs.masks[order]).float().mean() >= 0.999
            images += 1
    assert images == 4


@pytest.mark.slow
def test_the_r50_recipe_exports(tmp_path):
    """The staged recipe's Mask R-CNN (R50-FPN, 256-channel heads, mmdet's test settings) passes the
    export's own check: onnxruntime's detections are PyTorch's on the seeded input."""
    cfg, _ = random_checkpoint('configs/maskrcnn_stage3.py', tmp_path / 'weights.pth')
    manifest = export(cfg, Checkpoint.read(str(tmp_path / 'weights.pth')), str(tmp_path / 'export'), shape=SHAPE)
    check = manifest['check']
    assert check['detections'] == 100 and check['max_abs_boxes_difference'] <= 0.01
    assert check['max_abs_scores_difference'] <= 1e-4 and manifest['test_cfg']['rpn']['nms_pre'] == 1000


def test_maskrcnn_export_without_detections_or_with_a_size_it_cannot_take(tmp_path):
    """A graph that finds nothing gives empty outputs (onnxruntime runs its zero-sized tensors);
    Mask R-CNN has no dynamic-shape export, and no input size the data preprocessor would pad."""
    cfg, _ = random_checkpoint('configs/mini/maskrcnn_r18_mini.py', tmp_path / 'weights.pth')
    with pytest.raises(UserError, match='Mask R-CNN is exported for one input size'):
        export(cfg, Checkpoint.read(str(tmp_path / 'weights.pth')), str(tmp_path / 'export'), dynamic=True)
    with pytest.raises(UserError, match='padded to multiples of 32 .* 250x500 is not one'):
        export(cfg, Checkpoint.read(str(tmp_path / 'weights.pth')), str(tmp_path / 'export'), shape=(250, 500))
    assert not osp.exists(tmp_path / 'export')
    cfg.model.test_cfg.rcnn.score_thr = 0.99  # above every random-weight score (about 1 / 9)
    manifest = export(cfg, Checkpoint.read(str(tmp_path / 'weights.pth')), str(tmp_path / 'export'), shape=SHAPE)
    assert manifest['check']['detections'] == 0 and manifest['test_cfg']['rcnn']['score_thr'] == 0.99
    session = inference_session(str(tmp_path / 'export' / 'model.onnx'))
    image = np.random.default_rng(1).standard_normal((1, 3, *SHAPE), dtype=np.float32)
    assert [o.shape for o in session.run(None, {'image': image})] == [(0, 4), (0,), (0,), (0, 28, 28)]


@pytest.mark.parametrize('size', [(32, 64), (7, 11)])
def test_binned_adaptive_pooling_equals_torch_s(size):
    """The export's stand-in for nn.AdaptiveAvgPool2d gives its bins, also where the output size
    does not divide the input size (which the ONNX exporter refuses)."""
    from mmcityscapes.deployment.export import BinnedAdaptiveAvgPool2d
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 4, *size), dtype=np.float32))
    for output_size in (1, 2, 3, 6, (3, 5), (None, 2)):
        expected = torch.nn.AdaptiveAvgPool2d(output_size)(x)
        assert torch.allclose(BinnedAdaptiveAvgPool2d(output_size)(x), expected, atol=1e-6), output_size


def test_only_a_fixed_size_export_of_another_size_changes_the_test_size():
    """The test pipeline's Resize scale becomes a fixed-size export's size when it differs from the
    config's test size, and stays for a dynamic export or one of the test size."""
    from mmcityscapes.deployment.export import test_image_shape
    from mmcityscapes.deployment.quantize import run_at_export_size
    from mmcityscapes.utils.config import load_config
    cfg = load_config(osp.join(REPO, 'configs/mini/deeplabv3_r18_mini.py'))
    test_size = list(test_image_shape(cfg))
    for exporter in (dict(dynamic_shape=True, shape=[128, 256]), dict(dynamic_shape=False, shape=test_size)):
        assert run_at_export_size(cfg, 'export', dict(exporter=exporter)) == ''
        assert list(test_image_shape(cfg)) == test_size
    assert run_at_export_size(cfg, 'export', dict(exporter=dict(dynamic_shape=False, shape=[128, 256]))) == '128x256'
    assert test_image_shape(cfg) == (128, 256)


@pytest.mark.parametrize('method', ['minmax', 'entropy'])
def test_calibration_one_activation_at_a_time_gives_onnxruntime_s_own_int8_model(method, tmp_path):
    """``quantize_model`` (its calibration session reducing each activation as it is produced, one
    input at a time) writes the same int8 model, byte for byte, as onnxruntime's own calibration in
    ``quantize_static`` with the same settings, given one input at a time (``CalibStridedMinMax``)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from mmcityscapes.deployment.quantize import output_nodes, quantize_model

    class StridedReader:  # the calibration data reader that CalibStridedMinMax asks for
        def __init__(self, feeds):
            self.all_feeds, self.feeds = feeds, iter(feeds)

        def __len__(self):
            return len(self.all_feeds)

        def set_range(self, start_index, end_index):
            self.feeds = iter(self.all_feeds[start_index:end_index])

        def get_next(self):
            return next(self.feeds, None)
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3),
                                  torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 1)).eval()
    float_model, prepared = str(tmp_path / 'float.onnx'), str(tmp_path / 'prepared.onnx')
    torch.onnx.export(network, (torch.zeros(1, 3, 32, 48),), float_model, input_names=['image'], dynamo=False)
    rng = np.random.default_rng(0)
    feeds = [{'image': rng.standard_normal((1, 3, 32, 48)).astype(np.float32)} for _ in range(3)]
    quantize_model(float_model, str(tmp_path / 'ours.onnx'), feeds, method, None)
    quant_pre_process(float_model, prepared, skip_symbolic_shape=True)
    quantize_static(prepared, str(tmp_path / 'onnxruntime.onnx'), StridedReader(feeds), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=dict(minmax=CalibrationMethod.MinMax, entropy=CalibrationMethod.Entropy)[method],
                    nodes_to_exclude=output_nodes(prepared), extra_options=dict(CalibStridedMinMax=1))
    ours, theirs = ((tmp_path / name).read_bytes() for name in ('ours.onnx', 'onnxruntime.onnx'))
    assert ours == theirs and b'QuantizeLinear' in ours
