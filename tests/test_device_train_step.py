"""The plugin's host-free pieces of the Mask R-CNN train step compute what mmdet's compute."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.models.task_modules.assigners import AssignResult, MaxIoUAssigner
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks, mask_target
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import mmcityscapes.components  # noqa: F401

from conftest import REPO

INSTANCE = 'configs/mini/maskrcnn_r18_mini.py'


def _sampler(kind):
    return TASK_UTILS.build(dict(type=kind, num=5, pos_fraction=0.4, add_gt_as_proposals=False))


@pytest.mark.parametrize('kind', ['RandomSampler', 'DeviceRandomSampler'])
def test_random_choice_draws_uniform_subsets(kind):
    """Each element is drawn with probability num/n and each pair with num(num-1)/(n(n-1)), as for
    a uniformly drawn subset; the elements are distinct members of the gallery."""
    torch.manual_seed(0)
    sampler, n, num, draws = _sampler(kind), 12, 5, 20000
    gallery = torch.arange(100, 100 + n)
    hits, pairs = torch.zeros(n), torch.zeros(n, n)
    for _ in range(draws):
        chosen = sampler.random_choice(gallery, num) - 100
        assert len(chosen.unique()) == num and chosen.dtype == torch.long
        member = torch.zeros(n)
        member[chosen] = 1
        hits += member
        pairs += member[:, None] * member[None]
    p, p_pair = num / n, num * (num - 1) / (n * (n - 1))
    assert torch.allclose(hits / draws, torch.full((n,), p), atol=5 * (p * (1 - p) / draws) ** 0.5)
    off_diagonal = pairs[~torch.eye(n, dtype=torch.bool)] / draws
    assert torch.allclose(off_diagonal, torch.full_like(off_diagonal, p_pair),
                          atol=5 * (p_pair * (1 - p_pair) / draws) ** 0.5)


def test_device_sampler_samples_as_mmdet_with_the_same_seed():
    """On the CPU both draw from the same generator: the same positives and negatives."""
    gt_inds = torch.tensor([0, 1, 0, 2, 0, 0, 1, 0, 3, 0, 0, 2, 0, 0, 0])
    assign = AssignResult(3, gt_inds, torch.rand(15), labels=torch.randint(0, 8, (15,)))
    priors = InstanceData(priors=torch.rand(15, 4) * 100)
    gt = InstanceData(bboxes=torch.rand(3, 4) * 100, labels=torch.arange(3))
    samples = []
    for kind in ('RandomSampler', 'DeviceRandomSampler'):
        torch.manual_seed(1)
        results = [_sampler(kind).sample(assign, priors, gt) for _ in range(5)]
        samples.append([(r.pos_inds.tolist(), r.neg_inds.tolist()) for r in results])
    assert samples[0] == samples[1] and len({str(s) for s in samples[0]}) > 1


@pytest.mark.parametrize('rule', [
    dict(pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3),  # the RPN's
    dict(pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5),  # the R-CNN's
    dict(pos_iou_thr=0.5, neg_iou_thr=(0.1, 0.5), min_pos_iou=0.0),
    dict(pos_iou_thr=0.5, neg_iou_thr=0.4, match_low_quality=False),
    dict(pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0.2, gt_max_assign_all=False),
])
def test_device_assigner_assigns_as_mmdet(rule):
    """The same ground truth, label and IoU for every prior, ties between ground truths included
    (IoUs rounded to tenths); no ground truth or no prior as well."""
    torch.manual_seed(0)
    shapes = [(int(torch.randint(1, 9, ())), int(torch.randint(1, 80, ()))) for _ in range(150)] + [(0, 5), (3, 0)]
    for num_gts, num_priors in shapes:
        overlaps = (torch.rand(num_gts, num_priors) * 10).round() / 10
        labels = torch.randint(0, 8, (num_gts,))
        expected = MaxIoUAssigner(**rule).assign_wrt_overlaps(overlaps, labels)
        ours = TASK_UTILS.build(dict(type='DeviceMaxIoUAssigner', **rule)).assign_wrt_overlaps(overlaps, labels)
        for key in ('gt_inds', 'labels', 'max_overlaps'):
            assert torch.equal(getattr(ours, key), getattr(expected, key)), (key, num_gts, num_priors)
        assert ours.num_gts == expected.num_gts and ours.gt_inds.dtype == expected.gt_inds.dtype


def _masks_and_proposals(seed, num_gt=4, num_pos=30, height=48, width=64):
    rng = np.random.default_rng(seed)
    masks = np.zeros((num_gt, height, width), np.uint8)
    for mask in masks:  # blobs with ragged edges
        y, x = rng.integers(0, height - 8), rng.integers(0, width - 8)
        mask[y:y + rng.integers(4, 30), x:x + rng.integers(4, 40)] = 1
        mask[rng.random((height, width)) < 0.05] ^= 1
    corners = torch.from_numpy(rng.uniform(-10, [width, height], (num_pos, 2))).float()
    sizes = torch.from_numpy(rng.uniform(2, 40, (num_pos, 2))).float()  # some leave the image
    return BitmapMasks(masks, height, width), torch.cat([corners, corners + sizes], 1), \
        torch.from_numpy(rng.integers(0, num_gt, num_pos))


@pytest.mark.parametrize('soft', [False, True])
def test_device_mask_targets_equal_mmdet_mask_target(soft):
    init_default_scope('mmdet')
    head = MODELS.build(dict(type='DeviceTargetFCNMaskHead', num_convs=1, in_channels=8, conv_out_channels=8,
                             num_classes=8))
    cfg = Config(dict(mask_size=(28, 28), soft_mask_target=soft))
    images = [_masks_and_proposals(seed) for seed in range(3)]
    images.append((images[0][0], torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)))  # no positive
    results = [InstanceData(pos_priors=p, pos_assigned_gt_inds=i) for _, p, i in images]
    ours = head.get_targets(results, [InstanceData(masks=m) for m, _, _ in images], cfg)
    reference = mask_target([p for _, p, _ in images], [i for _, _, i in images], [m for m, _, _ in images], cfg)
    assert ours.shape == reference.shape == (90, 28, 28) and ours.dtype == reference.dtype
    assert 0.05 < reference.mean() < 0.95
    assert torch.allclose(ours, reference, atol=1e-6) if soft else torch.equal(ours, reference)


def test_float32_roi_extractor_pools_half_features_as_float_ones():
    """Given float16 features (what autocast makes), the RoIs keep their float32 coordinates:
    pooling equals mmdet's on the same features in float32; mmdet's own cast would round the boxes."""
    init_default_scope('mmdet')
    layer = dict(type='RoIAlign', output_size=7, sampling_ratio=0)
    rng = torch.Generator().manual_seed(0)
    feats = tuple(torch.randn(2, 8, 2048 // s, 2048 // s, generator=rng).half() for s in (4, 8, 16, 32))
    corners = torch.rand(40, 2, generator=rng) * 1900
    rois = torch.cat([torch.randint(0, 2, (40, 1), generator=rng).float(), corners,
                      corners + 20 + torch.rand(40, 2, generator=rng) * 400], 1)
    assert not torch.equal(rois.half().float(), rois)
    extractor = dict(roi_layer=layer, out_channels=8, featmap_strides=[4, 8, 16, 32])
    reference = MODELS.build(dict(type='SingleRoIExtractor', **extractor))
    ours = MODELS.build(dict(type='Float32RoIExtractor', **extractor))
    pooled = ours(feats, rois)
    assert pooled.dtype == torch.float32 and torch.equal(pooled, reference(tuple(f.float() for f in feats), rois))


def _batch(seed, height=256, width=512):
    rng = np.random.default_rng(seed)
    inputs, samples = [], []
    for _ in range(2):
        inputs.append(torch.from_numpy(rng.integers(0, 256, (3, height, width), np.uint8)))
        n = int(rng.integers(2, 6))
        corners = rng.uniform(0, [width * 0.7, height * 0.7], (n, 2))
        boxes = np.round(np.concatenate([corners, corners + rng.uniform(20, 80, (n, 2))], 1))
        masks = np.zeros((n, height, width), np.uint8)
        for mask, (x1, y1, x2, y2) in zip(masks, boxes.astype(int)):
            mask[y1:y2, x1:x2] = 1
        sample = DetDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                             pad_shape=(height, width), scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(bboxes=torch.from_numpy(boxes).float(),
                                           labels=torch.from_numpy(rng.integers(0, 8, n)),
                                           masks=BitmapMasks(masks, height, width))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_config_selects_them_and_the_loss_is_mmdet_s():
    """The instance configs train with the plugin's assigner, sampler and mask head; with mmdet's
    own in their place, the same weights, seed and batch give the same losses."""
    cfg = Config.fromfile(osp.join(REPO, INSTANCE))
    assert cfg.model.roi_head.mask_head.type == 'DeviceTargetFCNMaskHead'
    assert cfg.model.roi_head.bbox_roi_extractor.type == cfg.model.roi_head.mask_roi_extractor.type == \
        'Float32RoIExtractor'
    for stage in ('rpn', 'rcnn'):
        assert cfg.model.train_cfg[stage].assigner.type == 'DeviceMaxIoUAssigner'
        assert cfg.model.train_cfg[stage].sampler.type == 'DeviceRandomSampler'
    init_default_scope('mmdet')
    torch.manual_seed(0)
    ours = MODELS.build(cfg.model)
    cfg.model.roi_head.mask_head.type = 'FCNMaskHead'
    cfg.model.roi_head.bbox_roi_extractor.type = cfg.model.roi_head.mask_roi_extractor.type = 'SingleRoIExtractor'
    for stage in ('rpn', 'rcnn'):
        cfg.model.train_cfg[stage].assigner.type = 'MaxIoUAssigner'
        cfg.model.train_cfg[stage].sampler.type = 'RandomSampler'
    mmdet = MODELS.build(cfg.model)
    mmdet.load_state_dict(ours.state_dict())
    losses = []
    for model in (ours, mmdet):
        torch.manual_seed(2)
        model.train()
        data = model.data_preprocessor(_batch(0), True)
        losses.append({k: float(sum(v) if isinstance(v, list) else v)
                       for k, v in model.loss(data['inputs'], data['data_samples']).items()})
    assert losses[0].keys() == losses[1].keys() and losses[0]['loss_mask'] > 0
    for key in losses[0]:
        assert losses[0][key] == pytest.approx(losses[1][key], rel=1e-5, abs=1e-6), key
