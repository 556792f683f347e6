"""Mask2Former on Cityscapes: the semantic inference of MaskFormerSemanticFusionHead, the recipe,
and one trained mini model scored on the three official tables (PQ, AP, mIoU) through
tools/train.py, tools/test.py and tools/infer.py."""
import glob
import json
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config

from mmcityscapes.cityscapes import panoptic
from mmcityscapes.common.errors import UserError

from conftest import REPO, run_tool

RECIPE = 'configs/mask2former_r50_cityscapes_panoptic.py'
MINI = 'configs/mini/mask2former_r18_mini.py'
PANOPTIC_FPN = 'configs/mini/panoptic_fpn_mini.py'
TABLES = ('cityscapes/PQ', 'cityscapes/mAP', 'mIoU')  # the official PQ and AP, the mIoU


def two_queries():
    """Class and mask logits of two queries over 3 classes + "no object", on 1x4 pixels. Query 0 is
    class 0 (0.6), 1 (0.2), 2 (0.1), no object (0.1); query 1: 0.1, 0.1, 0.4, 0.4. Query 0's mask
    covers pixels 0 and 2 (half), query 1's pixels 1 and 2 (half); pixel 3 is in neither."""
    probabilities = torch.tensor([[0.6, 0.2, 0.1, 0.1], [0.1, 0.1, 0.4, 0.4]], dtype=torch.float64)
    masks = torch.tensor([[[30.0, -30.0, 0.0, -30.0]], [[-30.0, 30.0, 0.0, -30.0]]], dtype=torch.float64)
    return probabilities.log(), masks


def test_semantic_scores_sum_class_probabilities_times_masks_over_queries():
    from mmcityscapes.models.maskformer_semantic_fusion_head import semantic_scores
    mask_cls, mask_pred = two_queries()
    scores = semantic_scores(mask_cls, mask_pred)
    assert scores.shape == (3, 1, 4)  # "no object" is no class
    expected = torch.tensor([[0.6, 0.1, 0.35, 0.0], [0.2, 0.1, 0.15, 0.0], [0.1, 0.4, 0.25, 0.0]],
                            dtype=torch.float64)
    assert torch.allclose(scores[:, 0], expected, atol=1e-12)


def fusion_heads(semantic_on=True):
    """(the plugin's head, mmdet's head) over the two queries' 3 classes (2 things, 1 stuff)."""
    from mmdet.models.seg_heads.panoptic_fusion_heads import MaskFormerFusionHead
    from mmengine.config import ConfigDict

    from mmcityscapes.models.maskformer_semantic_fusion_head import MaskFormerSemanticFusionHead
    test_cfg = dict(panoptic_on=True, instance_on=True, max_per_image=4, object_mask_thr=0.3, iou_thr=0.5)
    ours = MaskFormerSemanticFusionHead(num_things_classes=2, num_stuff_classes=1,
                                        test_cfg=ConfigDict(test_cfg, semantic_on=semantic_on))
    return ours, MaskFormerFusionHead(num_things_classes=2, num_stuff_classes=1, test_cfg=ConfigDict(test_cfg))


def test_fusion_head_adds_the_semantic_result_and_keeps_mmdet_s_others():
    """Padding removed and the masks resized to the original image as for the other results;
    panoptic and instance results are mmdet's."""
    from mmdet.structures import DetDataSample
    mask_cls, mask_pred = two_queries()
    mask_pred = torch.cat([mask_pred, torch.full((2, 1, 4), -30.0, dtype=torch.float64)], 1)  # a padded row
    meta = dict(img_shape=(1, 4), ori_shape=(2, 8))
    ours, mmdet = fusion_heads()
    samples = [DetDataSample(metainfo=meta)]
    results = ours.predict(mask_cls[None].float(), mask_pred[None].float(), samples, rescale=True)
    # bilinear, pixel centres aligned: output pixel 4 is 3/4 of input pixel 2 (both masks at 0) and 1/4 of
    # pixel 1 (query 1's): class 2; pixel 5 is 3/4 of pixel 2 and 1/4 of pixel 3 (neither): class 0
    assert samples[0].pred_sem_seg.sem_seg.tolist() == [[[0, 0, 2, 2, 2, 0, 0, 0]] * 2]
    theirs = mmdet.predict(mask_cls[None].float(), mask_pred[None].float(), [DetDataSample(metainfo=meta)],
                           rescale=True)
    assert torch.equal(results[0]['pan_results'].sem_seg, theirs[0]['pan_results'].sem_seg)
    for key in ('labels', 'scores', 'masks'):
        assert torch.equal(results[0]['ins_results'][key], theirs[0]['ins_results'][key]), key
    ours, _ = fusion_heads(semantic_on=False)
    samples = [DetDataSample(metainfo=meta)]
    ours.predict(mask_cls[None].float(), mask_pred[None].float(), samples, rescale=True)
    assert 'pred_sem_seg' not in samples[0]


def test_recipe_is_mask2former_s_cityscapes_schedule():
    cfg = Config.fromfile(osp.join(REPO, RECIPE))
    head = cfg.model.panoptic_head
    assert (head.num_things_classes, head.num_stuff_classes, head.num_queries) == (8, 11, 100)
    assert head.loss_cls.class_weight == [1.0] * 19 + [0.1]
    assert cfg.model.panoptic_fusion_head.type == 'MaskFormerSemanticFusionHead'
    assert cfg.model.data_preprocessor.batch_augments is None
    assert (cfg.train_cfg.max_iters, cfg.train_dataloader.batch_size, cfg.auto_scale_lr.base_batch_size) == \
        (90000, 2, 16)
    assert cfg.train_dataloader.dataset.type == 'CityscapesPanopticDataset'
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ('AdamW', 1e-4, 0.05)
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult == 0.1
    assert cfg.param_scheduler.type == 'PolyLR' and cfg.param_scheduler.end == 90000
    assert [t for t in cfg.train_pipeline if t.type == 'RandomCrop'][0].crop_size == (512, 1024)
    assert [t for t in cfg.test_dataloader.dataset.pipeline if t.type == 'Resize'][0].scale == (2048, 1024)
    assert [e.type for e in cfg.test_evaluator] == ['CityscapesPanopticMetric', 'CityscapesInstanceMetric',
                                                   'mmseg.SegmentationMetric']


def test_results_a_model_gives_and_evaluators_that_need_others():
    from mmcityscapes.utils.config import load_config
    from mmcityscapes.utils.tasks import check_evaluated_tasks, predicted_tasks
    recipe = load_config(osp.join(REPO, RECIPE))
    assert predicted_tasks(recipe) == ('panoptic', 'instance', 'semantic')
    check_evaluated_tasks(recipe, ['val', 'test'])
    no_semantic = load_config(osp.join(REPO, RECIPE), {'model.test_cfg.semantic_on': False})
    with pytest.raises(UserError, match=r'^test_evaluator: mmseg.SegmentationMetric scores semantic results, which '
                                        r'the model \(Mask2Former\) does not give \(panoptic, instance only\): set '
                                        r'model.test_cfg.semantic_on=True$'):
        check_evaluated_tasks(no_semantic, ['test'])
    mmdet_head = load_config(osp.join(REPO, RECIPE), {'model.panoptic_fusion_head.type': 'MaskFormerFusionHead'})
    with pytest.raises(UserError, match=r"^model.test_cfg.semantic_on: mmdet's MaskFormerFusionHead has no semantic"):
        predicted_tasks(mmdet_head)
    fpn = load_config(osp.join(REPO, PANOPTIC_FPN))
    fpn.test_evaluator = [fpn.test_evaluator, dict(type='SemSegMetric')]
    with pytest.raises(UserError, match=r'^test_evaluator: SemSegMetric scores semantic results, which the model '
                                        r'\(PanopticFPN\) does not give \(panoptic only\): remove it'):
        check_evaluated_tasks(fpn, ['test'])


def mini_model(things=8, stuff=11):
    """The mini Mask2Former, built, for ``things`` + ``stuff`` classes."""
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    import mmcityscapes.components  # noqa: F401
    cfg = Config.fromfile(osp.join(REPO, MINI))
    cfg.model.panoptic_head.update(num_things_classes=things, num_stuff_classes=stuff)
    cfg.model.panoptic_head.loss_cls.class_weight = [1.0] * (things + stuff) + [0.1]
    cfg.model.panoptic_fusion_head.update(num_things_classes=things, num_stuff_classes=stuff)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg.model)


def test_a_coco_checkpoint_is_refused_by_shapes_and_fine_tunes_with_a_report(tmp_path):
    """A COCO panoptic Mask2Former (80 + 53 classes) given to the Cityscapes config: testing it stops
    in one line naming the class embedding; fine-tuning from it (load_from) names what keeps its
    initialisation."""
    from mmcityscapes.engine.hooks.load_report_hook import LoadReportHook
    from mmcityscapes.utils.checkpoint import Checkpoint
    torch.manual_seed(0)
    coco = tmp_path / 'mask2former_coco.pth'
    torch.save(dict(state_dict=mini_model(80, 53).state_dict(), meta={}), coco)
    cityscapes = mini_model()
    with pytest.raises(UserError, match=r'mask2former_coco.pth does not fit this model: 2 of its \d+ tensors have '
                                        r'other shapes \(e.g. panoptic_head.cls_embed.weight: \(134, 64\) in the '
                                        r'checkpoint, \(20, 64\) in the model\)$'):
        Checkpoint.read(str(coco)).load_into(cityscapes)
    warnings = []
    runner = SimpleNamespace(model=cityscapes, logger=SimpleNamespace(warning=warnings.append))
    LoadReportHook().after_load_checkpoint(runner, torch.load(coco, weights_only=True))
    assert warnings == ['LoadReportHook: 2 tensors keep their initialisation (2 had another shape): '
                        'panoptic_head.cls_embed']


@pytest.fixture(scope='module')
def mini_run(mini_env, tmp_path_factory):
    """The mini Mask2Former trained through tools/train.py (its config's 200 iterations): the work dir."""
    work_dir = tmp_path_factory.mktemp('mask2former')
    run_tool('tools/train.py', MINI, '--work-dir', str(work_dir), '--cfg-options', 'randomness.seed=0',
             env=mini_env, timeout=1500)
    return work_dir


@pytest.fixture(scope='module')
def mini_tested(mini_run, mini_env):
    """tools/test.py on the mini run's checkpoint: its metrics."""
    run_tool('tools/test.py', MINI, str(mini_run / 'iter_200.pth'), '--work-dir', str(mini_run), env=mini_env)
    return json.load(open(mini_run / 'test_mask2former_r18_mini_iter_200.json'))


@pytest.mark.slow
def test_one_checkpoint_gives_the_three_tables(mini_tested):
    """PQ (all, things, stuff, per class), the official instance AP and the mIoU, from one
    checkpoint and one pass; PQ and mIoU above 0 after 200 iterations on 10 images."""
    groups = [f'cityscapes/{m}{g}' for m in ('PQ', 'SQ', 'RQ') for g in ('', '_th', '_st')]
    assert set(groups) | {f'cityscapes/PQ.{c}' for c in panoptic.CLASSES} | {'cityscapes/AP50', 'aAcc'} \
        <= set(mini_tested)
    assert 0 < mini_tested['cityscapes/PQ'] <= 1 and 0 <= mini_tested['cityscapes/mAP'] <= 1
    assert 0 < mini_tested['mIoU'] <= 100


@pytest.mark.slow
def test_infer_writes_the_three_test_server_formats(mini_run, mini_tested, mini_env, mini_root, tmp_path):
    """tools/infer.py writes panoptic, instance and semantic results from one run, each scored by
    eval_cityscapes as test.py scored it in memory."""
    run_tool('tools/infer.py', MINI, str(mini_run / 'iter_200.pth'), str(mini_root / 'leftImg8bit' / 'val'),
             '--out', str(tmp_path / 'out'), env=mini_env)
    results = tmp_path / 'out' / 'results'
    assert len(glob.glob(f'{results}/panoptic/cityscapes_panoptic_val/*_panoptic.png')) == 4
    assert len(glob.glob(f'{results}/semantic/*.png')) == 4
    assert len(glob.glob(f'{results}/instance/*_pred.txt')) == 4
    scores = {}
    for task in ('panoptic', 'instance'):
        run_tool('tools/analysis_tools/eval_cityscapes.py', '--task', task, '--gt-root',
                 str(mini_root / 'gtFine' / 'val'), '--pred-dir', str(results / task), '--out',
                 str(tmp_path / f'{task}.json'))
        scores[task] = json.load(open(tmp_path / f'{task}.json'))
    assert scores['panoptic']['All']['pq'] == pytest.approx(mini_tested['cityscapes/PQ'], abs=1e-4)
    assert scores['instance']['mAP'] == pytest.approx(mini_tested['cityscapes/mAP'], abs=1e-4)
    run_tool('tools/analysis_tools/eval_cityscapes.py', '--task', 'semantic', '--gt-root',
             str(mini_root / 'gtFine' / 'val'), '--pred-dir', str(results / 'semantic'), '--out',
             str(tmp_path / 'semantic.json'))
    official = json.load(open(tmp_path / 'semantic.json'))['averageScoreClasses']
    assert 100 * official == pytest.approx(mini_tested['mIoU'], abs=0.01)  # test.py rounds to 0.01
