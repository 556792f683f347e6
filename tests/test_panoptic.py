"""Cityscapes panoptic: the ground truth against createPanopticImgs, the PQ evaluators against
evalPanopticSemanticLabeling, the fusion of two trained models (checkpoints and exports) through
tools/test.py and tools/infer.py, and a Panoptic FPN trained through tools/train.py."""
import glob
import json
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest

from mmcityscapes.cityscapes import panoptic, results
from mmcityscapes.cityscapes.noisy import write_panoptic_predictions
from mmcityscapes.cityscapes.reference import official_panoptic
from mmcityscapes.common.errors import UserError

from conftest import INSTANCE, REPO, SEMANTIC, run_tool, short_run

FUSION = 'configs/mini/panoptic_fusion_mini.py'
PANOPTIC_FPN = 'configs/mini/panoptic_fpn_mini.py'


def same_result(ours, official):
    """Two evalPanopticSemanticLabeling result dictionaries agree to 1e-12 (JSON keys are strings)."""
    for group in ('All', 'Things', 'Stuff'):
        assert ours[group]['n'] == official[group]['n']
        assert all(abs(ours[group][k] - official[group][k]) <= 1e-12 for k in ('pq', 'sq', 'rq')), group
    assert {str(k) for k in ours['per_class']} == {str(k) for k in official['per_class']}
    theirs = {str(k): v for k, v in official['per_class'].items()}
    for category, values in ours['per_class'].items():
        assert all(abs(values[k] - theirs[str(category)][k]) <= 1e-12 for k in ('pq', 'sq', 'rq')), category


def test_ground_truth_is_create_panoptic_imgs_s(mini_root, tmp_path):
    """The dataset converter's panoptic JSON is byte for byte cityscapesscripts' convert2panoptic's,
    its PNGs pixel for pixel."""
    from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic
    convert2panoptic(str(mini_root / 'gtFine'), str(tmp_path), setNames=['val'])
    ours_json, ours_folder = panoptic.ground_truth_paths(str(mini_root), 'val')
    assert open(ours_json, 'rb').read() == open(tmp_path / 'cityscapes_panoptic_val.json', 'rb').read()
    names = sorted(osp.basename(p) for p in glob.glob(f'{tmp_path}/cityscapes_panoptic_val/*.png'))
    assert len(names) == 4 and names == sorted(osp.basename(p) for p in glob.glob(f'{ours_folder}/*.png'))
    for name in names:
        theirs = cv2.imread(str(tmp_path / 'cityscapes_panoptic_val' / name))
        assert np.array_equal(cv2.imread(osp.join(ours_folder, name)), theirs)
    segments = [s for a in json.load(open(ours_json))['annotations'] for s in a['segments_info']]
    assert {s['category_id'] for s in segments} & set(panoptic.THING_IDS)  # things and stuff
    assert {s['category_id'] for s in segments} & set(panoptic.STUFF_IDS)


@pytest.fixture(scope='module')
def noisy_panoptic(mini_root, tmp_path_factory):
    """Noisy predictions of the val split in the official layout: the folder holding them."""
    pred_dir = tmp_path_factory.mktemp('panoptic_pred')
    write_panoptic_predictions(*panoptic.ground_truth_paths(str(mini_root), 'val'),
                               str(pred_dir / 'cityscapes_panoptic_val.json'))
    return pred_dir


def official_result(mini_root, pred_dir, tmp_path):
    gt_json, gt_folder = panoptic.ground_truth_paths(str(mini_root), 'val')
    return official_panoptic(gt_json, gt_folder, str(pred_dir / 'cityscapes_panoptic_val.json'),
                             str(pred_dir / 'cityscapes_panoptic_val'), str(tmp_path / 'official.json'))


def test_evaluator_equals_official(noisy_panoptic, mini_root, tmp_path):
    official = official_result(mini_root, noisy_panoptic, tmp_path)
    ours, n = results.evaluate_panoptic(str(mini_root / 'gtFine' / 'val'), str(noisy_panoptic), nproc=2)
    assert n == 4 and 0 < ours['All']['pq'] < 1 and ours['Things']['n'] > 0 and ours['Stuff']['n'] > 0
    same_result(ours, official)


def broken_copy(noisy_panoptic, tmp_path, edit):
    """A copy of the noisy predictions with ``edit(annotations, png folder)`` applied to their JSON."""
    pred_dir = tmp_path / 'pred'
    shutil.copytree(noisy_panoptic, pred_dir)
    pred_json = pred_dir / 'cityscapes_panoptic_val.json'
    content = json.load(open(pred_json))
    edit(content['annotations'], pred_dir / 'cityscapes_panoptic_val')
    json.dump(content, open(pred_json, 'w'))
    return pred_dir


def drop_first_segment(annotations, folder):
    annotations[0]['segments_info'].pop(0)


def unknown_category(annotations, folder):
    annotations[0]['segments_info'][0]['category_id'] = 3  # 'out of roi': not evaluated


def half_size_png(annotations, folder):
    path = str(folder / annotations[0]['file_name'])
    cv2.imwrite(path, cv2.resize(cv2.imread(path), (256, 128), interpolation=cv2.INTER_NEAREST))


def drop_image(annotations, folder):
    annotations.pop(0)


@pytest.mark.parametrize('edit, message', [
    (drop_first_segment, r'_panoptic_pred.png: segment \d+ is in the PNG and not in the JSON$'),
    (unknown_category, r'_panoptic_pred.png: segment \d+ has the unknown category_id 3$'),
    (half_size_png, r'_panoptic_pred.png is 256x128, the ground truth 512x256$'),
    (drop_image, r'cityscapes_panoptic_val.json has no prediction for \w+_\d+_\d+$'),
])
def test_evaluator_names_a_bad_prediction(noisy_panoptic, mini_root, tmp_path, edit, message):
    pred_dir = broken_copy(noisy_panoptic, tmp_path, edit)
    with pytest.raises(UserError, match=message):
        results.evaluate_panoptic(str(mini_root / 'gtFine' / 'val'), str(pred_dir), nproc=1)


def test_eval_tool_without_panoptic_ground_truth_says_how_to_make_it(noisy_panoptic, mini_root, tmp_path):
    shutil.copytree(mini_root / 'gtFine' / 'val', tmp_path / 'gtFine' / 'val')  # instance maps, no panoptic JSON
    proc = run_tool('tools/analysis_tools/eval_cityscapes.py', '--task', 'panoptic', '--gt-root',
                    str(tmp_path / 'gtFine' / 'val'), '--pred-dir', str(noisy_panoptic), check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f'error: no panoptic ground truth {tmp_path}/gtFine/cityscapes_panoptic_val.json '
        '(tools/dataset_converters/cityscapes.py writes it)']


def test_metric_in_memory_equals_official_on_mmdet_s_class_maps(noisy_panoptic, mini_root, tmp_path):
    """CityscapesPanopticMetric on predictions in mmdet's form (``instance * 1000 + class`` for
    things, the class for stuff), as a panoptic model returns them, equals the official script on
    the same predictions written as files."""
    import torch

    from mmcityscapes.evaluation.cityscapes_panoptic_metric import CityscapesPanopticMetric
    pred_json = noisy_panoptic / 'cityscapes_panoptic_val.json'
    out = tmp_path / 'class_maps'
    metric, annotations = CityscapesPanopticMetric(), []
    for annotation in json.load(open(pred_json))['annotations']:
        ids = panoptic.read_panoptic_png(str(noisy_panoptic / 'cityscapes_panoptic_val' / annotation['file_name']))
        class_map = np.full(ids.shape, len(panoptic.CLASSES), np.int64)  # void
        for i, segment in enumerate(annotation['segments_info']):
            label = panoptic.CLASS_LABEL_IDS.index(segment['category_id'])
            class_map[ids == segment['id']] = label + (i + 1) * 1000 if segment['category_id'] in panoptic.THING_IDS \
                else label  # stuff segments of one class merge, as in mmdet's form
        segment_ids, segments = panoptic.from_class_map(class_map)
        name = annotation['image_id'] + '_panoptic_pred.png'
        panoptic.write_panoptic_png(str(out / 'cityscapes_panoptic_val' / name), segment_ids)
        annotations.append(dict(image_id=annotation['image_id'], file_name=name, segments_info=segments))
        city = annotation['image_id'].split('_')[0]
        img_path = f'{mini_root}/leftImg8bit/val/{city}/{annotation["image_id"]}_leftImg8bit.png'
        metric.process({}, [dict(img_path=img_path, pred_panoptic_seg=dict(sem_seg=torch.from_numpy(class_map)[None]))])
    json.dump(dict(annotations=annotations), open(out / 'cityscapes_panoptic_val.json', 'w'))
    official = official_result(mini_root, out, tmp_path)
    ours = metric.compute_metrics(metric.results)
    assert ours['PQ'] == pytest.approx(official['All']['pq'], abs=1e-12) and 0 < ours['PQ'] < 1
    assert ours['PQ_th'] == pytest.approx(official['Things']['pq'], abs=1e-12)
    assert ours['PQ_st'] == pytest.approx(official['Stuff']['pq'], abs=1e-12)


def fusion_options(things, stuff):
    # a low score threshold: the 60-iteration Mask R-CNN's scores are low
    return ['--cfg-options', f'model.thing_checkpoint={things}', f'model.stuff_checkpoint={stuff}',
            'model.score_thr=0.05']


@pytest.fixture(scope='module')
def fusion_tested(trained_instance_run, semantic_run, mini_env, tmp_path_factory):
    """tools/test.py on the fusion of the suite's trained Mask R-CNN and DeepLabV3: its metrics."""
    work_dir = tmp_path_factory.mktemp('fusion')
    run_tool('tools/test.py', FUSION, '-', '--work-dir', str(work_dir),
             *fusion_options(trained_instance_run / 'iter_60.pth', semantic_run / 'iter_4.pth'), env=mini_env)
    return json.load(open(work_dir / 'test_panoptic_fusion_mini.json'))


@pytest.mark.slow
def test_fusion_scores_pq_and_the_mask_rcnn_s_own_ap(fusion_tested, trained_instance_run):
    """The fusion's table: PQ, SQ, RQ over all, things and stuff and per class, and the Mask R-CNN's
    own Cityscapes AP as it scores tested alone. (The suite's two models are trained a few
    iterations: their PQ is not a measure of the fusion; tests/test_panoptic.py's Panoptic FPN and
    the evaluator tests check PQ itself.)"""
    groups = [f'cityscapes/{m}{g}' for m in ('PQ', 'SQ', 'RQ') for g in ('', '_th', '_st')]
    assert set(groups) | {f'cityscapes/PQ.{c}' for c in panoptic.CLASSES} <= set(fusion_tested)
    assert all(0 <= fusion_tested[k] <= 1 for k in groups)
    scalars = glob.glob(f'{trained_instance_run}/*/vis_data/scalars.json')[0]
    alone = json.loads(open(scalars).read().splitlines()[-1])  # its validation on the same images at iteration 60
    assert fusion_tested['cityscapes/mAP'] == pytest.approx(alone['cityscapes/mAP'], abs=1e-9)


@pytest.mark.slow
def test_fusion_of_exports_gives_the_checkpoints_pq(fusion_tested, instance_export, semantic_export, mini_env,
                                                    tmp_path):
    run_tool('tools/test.py', FUSION, '-', '--work-dir', str(tmp_path),
             *fusion_options(instance_export[0], semantic_export[0]), env=mini_env)
    exported = json.load(open(tmp_path / 'test_panoptic_fusion_mini.json'))
    for key in ('cityscapes/PQ', 'cityscapes/PQ_th', 'cityscapes/PQ_st', 'cityscapes/mAP'):
        assert abs(exported[key] - fusion_tested[key]) <= 0.01, key


@pytest.mark.slow
def test_infer_writes_the_official_format_test_scores(fusion_tested, trained_instance_run, semantic_run, mini_env,
                                                      mini_root, tmp_path):
    """tools/infer.py's panoptic files: eval_cityscapes and the official script give test.py's PQ;
    the two models' own results beside them."""
    run_tool('tools/infer.py', FUSION, '-', str(mini_root / 'leftImg8bit' / 'val'), '--out', str(tmp_path / 'out'),
             *fusion_options(trained_instance_run / 'iter_60.pth', semantic_run / 'iter_4.pth'), env=mini_env)
    pred_dir = tmp_path / 'out' / 'results' / 'panoptic'
    assert len(glob.glob(f'{tmp_path}/out/results/semantic/*.png')) == 4
    assert len(glob.glob(f'{tmp_path}/out/results/instance/*_pred.txt')) == 4
    assert len(glob.glob(f'{pred_dir}/cityscapes_panoptic_val/*_panoptic.png')) == 4
    segments = [s for a in json.load(open(pred_dir / 'cityscapes_panoptic_val.json'))['annotations']
                for s in a['segments_info']]
    assert any(s['category_id'] in panoptic.THING_IDS for s in segments)  # instances pasted
    run_tool('tools/analysis_tools/eval_cityscapes.py', '--task', 'panoptic', '--gt-root',
             str(mini_root / 'gtFine' / 'val'), '--pred-dir', str(pred_dir), '--out', str(tmp_path / 'ours.json'))
    ours = json.load(open(tmp_path / 'ours.json'))
    same_result(ours, official_result(mini_root, pred_dir, tmp_path))
    assert ours['All']['pq'] == pytest.approx(fusion_tested['cityscapes/PQ'], abs=1e-4)


def test_fusion_refuses_models_that_do_not_fit(semantic_run, trained_instance_run):
    from mmdet.registry import MODELS

    import mmcityscapes.components  # noqa: F401
    things, stuff = osp.join(REPO, INSTANCE), osp.join(REPO, SEMANTIC)
    fusion = dict(type='PanopticFusion', thing_config=things,
                  thing_checkpoint=str(trained_instance_run / 'iter_60.pth'), stuff_config=stuff,
                  stuff_checkpoint=str(semantic_run / 'iter_4.pth'))
    with pytest.raises(UserError, match=r'/configs/mini/deeplabv3_r18_mini.py is a semantic config; the fusion takes '
                                        r'an instance one here$'):
        MODELS.build(dict(fusion, thing_config=stuff))
    with pytest.raises(UserError, match=r'iter_4.pth'):  # a semantic checkpoint for the Mask R-CNN
        MODELS.build(dict(fusion, thing_checkpoint=str(semantic_run / 'iter_4.pth')))


def test_fusion_without_trained_models_names_the_command_that_trains_them(tmp_path, monkeypatch):
    """configs/panoptic_fusion.py's Mask R-CNN is the last stage of configs/maskrcnn_staged.py."""
    from mmdet.registry import MODELS
    from mmengine.config import Config

    import mmcityscapes.components  # noqa: F401
    monkeypatch.chdir(tmp_path)  # no work_dirs/ here
    cfg = Config.fromfile(osp.join(REPO, 'configs/panoptic_fusion.py'))
    with pytest.raises(UserError) as error:
        MODELS.build(cfg.model)
    assert str(error.value) == ('work_dirs/maskrcnn_staged/maskrcnn_stage3/ holds no trained checkpoint: run '
                                f'`python tools/train.py {REPO}/configs/maskrcnn_staged.py` first')


@pytest.mark.slow
def test_panoptic_fpn_trains_and_scores_pq(mini_env, tmp_path):
    """mmdet's Panoptic FPN on the Cityscapes panoptic dataset, from scratch through tools/train.py:
    its validation PQ (the official one) above 0 for the stuff classes after 60 iterations. Its
    export is refused with the reason."""
    run_tool('tools/train.py', PANOPTIC_FPN, '--work-dir', str(tmp_path), *short_run(60), 'randomness.seed=0',
             env=mini_env)
    log = open(glob.glob(f'{tmp_path}/*/*.log')[0]).read()
    assert 'cityscapes/PQ_st:' in log
    pq_st = float(log.split('cityscapes/PQ_st: ')[1].split()[0])
    assert 0 < pq_st <= 1
    proc = run_tool('tools/deployment/export.py', PANOPTIC_FPN, str(tmp_path / 'iter_60.pth'), '--out',
                    str(tmp_path / 'export'), env=mini_env, check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert 'panoptic models are not exported (' in proc.stderr.strip().splitlines()[-1]
    assert not osp.exists(tmp_path / 'export')
