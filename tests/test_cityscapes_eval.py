"""The fast Cityscapes evaluators against cityscapesscripts' own, image by image and overall."""
import glob
import json
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import torch

from mmcityscapes.cityscapes.noisy import CLASSES, THING_IDS, write_label_predictions, write_predictions
from mmcityscapes.cityscapes.reference import official_semantic, same_scores
from mmcityscapes.common.errors import UserError
from mmcityscapes.evaluation.cityscapes_instance_metric import CityscapesInstanceMetric

from conftest import run_tool


@pytest.fixture(scope='module')
def predictions(mini_root, tmp_path_factory):
    """Noisy predictions of the val ground truth, as files in the official format and in memory."""
    pred_dir = tmp_path_factory.mktemp('predictions')
    gt_files = sorted(glob.glob(f'{mini_root}/gtFine/val/*/*_gtFine_instanceIds.png'))
    return pred_dir, gt_files, write_predictions(gt_files, str(pred_dir), n_masks=0)


@pytest.fixture(scope='module')
def official(predictions, tmp_path_factory):
    """cityscapesscripts' evaluator on the prediction files (its JSON writer, which fails on
    numpy ints and writes matches.json into the cwd, is switched off)."""
    import cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling as cs
    pred_dir, gt_files, _ = predictions
    patch = pytest.MonkeyPatch()
    patch.setattr(cs, 'writeDict2JSON', lambda *_: None)
    patch.chdir(tmp_path_factory.mktemp('official_cwd'))
    args = cs.args
    args.gtInstancesFile = str(tmp_path_factory.mktemp('gt') / 'gtInstances.json')
    args.predictionPath, args.predictionWalk = osp.abspath(pred_dir), None
    args.quiet, args.JSONOutput = True, False
    try:
        return cs.evaluateImgLists([cs.getPrediction(gt, args) for gt in gt_files], gt_files, args)['averages']
    finally:
        patch.undo()


def as_official(result):
    """Our result keyed like the official ``averages``, flattened."""
    flat = {'allAp': result['mAP'], 'allAp50%': result['AP50']}
    for c in CLASSES:
        flat[f'{c}.ap'], flat[f'{c}.ap50%'] = result[f'AP.{c}'], result[f'AP50.{c}']
    return flat


def flatten(official):
    flat = {'allAp': official['allAp'], 'allAp50%': official['allAp50%']}
    for c, values in official['classes'].items():
        flat[f'{c}.ap'], flat[f'{c}.ap50%'] = values['ap'], values['ap50%']
    return flat


def test_file_evaluator_equals_official(predictions, official, mini_root, tmp_path):
    pred_dir, _, _ = predictions
    run_tool('tools/analysis_tools/eval_cityscapes.py', '--task', 'instance', '--gt-root',
             str(mini_root / 'gtFine' / 'val'), '--pred-dir', str(pred_dir), '--nproc', '2',
             '--out', str(tmp_path / 'result.json'))
    ours = as_official(json.load(open(tmp_path / 'result.json')))
    assert 0.05 < official['allAp'] < 0.95  # a non-trivial case
    assert ours == pytest.approx(flatten(official), abs=1e-12, nan_ok=True)


@pytest.mark.parametrize('named', ['image', 'annotation'])
def test_in_memory_metric_equals_official(predictions, official, named):
    """The metric on images of the official layout, and on mmdet's own CityScapesMetric inputs,
    whose ``img_path`` is the ``*_gtFine_instanceIds.png`` itself."""
    _, gt_files, in_memory = predictions
    metric = CityscapesInstanceMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    for gt_path, preds in in_memory.items():
        img_path = gt_path.replace('/gtFine/', '/leftImg8bit/').replace('_gtFine_instanceIds.png', '_leftImg8bit.png')
        masks, labels, scores = zip(*preds)
        sample = dict(img_path=img_path if named == 'image' else gt_path, pred_instances=dict(
            masks=torch.from_numpy(np.stack(masks)), scores=torch.tensor(scores, dtype=torch.float64),
            labels=torch.tensor([THING_IDS.index(label) for label in labels])))
        metric.process({}, [sample])
    ours = as_official(metric.compute_metrics(metric.results))
    assert ours == pytest.approx(flatten(official), abs=1e-12, nan_ok=True)
    assert not glob.glob('matches.json')


def test_in_memory_metric_names_an_image_name_it_cannot_pair(predictions):
    _, gt_files, in_memory = predictions
    metric = CityscapesInstanceMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    masks, labels, scores = zip(*in_memory[gt_files[0]])
    sample = dict(img_path='/data/frankfurt_000000_000294.jpg', pred_instances=dict(
        masks=torch.from_numpy(np.stack(masks)), scores=torch.tensor(scores), labels=torch.zeros(len(labels))))
    with pytest.raises(UserError) as error:
        metric.process({}, [sample])
    assert str(error.value) == ('/data/frankfurt_000000_000294.jpg: expected a Cityscapes image name ending with '
                                '_leftImg8bit.png (or its _gtFine_instanceIds.png) to find its ground truth')


def test_each_image_alone_equals_official(predictions, tmp_path):
    """Image by image: the same AP as the official evaluator on that image only."""
    import cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling as cs

    from mmcityscapes.cityscapes.instance_eval import evaluate, match_image
    pred_dir, gt_files, in_memory = predictions
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cs, 'writeDict2JSON', lambda *_: None)
        patch.chdir(tmp_path)
        args = cs.args
        args.predictionPath, args.predictionWalk = osp.abspath(pred_dir), None
        args.quiet, args.JSONOutput = True, False
        for i, gt_path in enumerate(gt_files):
            args.gtInstancesFile = str(tmp_path / f'gt{i}.json')
            official = cs.evaluateImgLists([cs.getPrediction(gt_path, args)], [gt_path], args)['averages']
            ours = evaluate([match_image(cv2.imread(gt_path, cv2.IMREAD_UNCHANGED), in_memory[gt_path])])
            assert as_official(ours) == pytest.approx(flatten(official), abs=1e-12, nan_ok=True), gt_path


def test_class_with_only_ignored_predictions_scores_zero():
    """Ground truth, and predictions that all fall on void: AP 0 (the official script crashes here)."""
    from mmcityscapes.cityscapes.instance_eval import evaluate, match_image
    gt = np.zeros((40, 40), np.int32)
    gt[:20] = 26000  # one car
    gt[20:] = 1  # ego vehicle: void
    void_hit = np.zeros((40, 40), bool)
    void_hit[25:35, 5:35] = True
    result = evaluate([match_image(gt, [(void_hit, 26, 0.9)])])
    assert result['AP.car'] == 0.0 and result['mAP'] == 0.0


@pytest.fixture(scope='module')
def label_predictions(mini_root, tmp_path_factory):
    pred_dir = tmp_path_factory.mktemp('label_predictions')
    gt_files = sorted(glob.glob(f'{mini_root}/gtFine/val/*/*_gtFine_labelIds.png'))
    write_label_predictions(gt_files, str(pred_dir))
    return str(pred_dir), gt_files


def test_semantic_evaluator_equals_official(label_predictions, mini_root, tmp_path):
    """Class and category IoU / iIoU and the confusion matrix, overall and image by image."""
    from mmcityscapes.cityscapes.semantic_eval import count_image, evaluate
    pred_dir, gt_files = label_predictions
    run_tool('tools/analysis_tools/eval_cityscapes.py', '--task', 'semantic', '--gt-root',
             str(mini_root / 'gtFine' / 'val'), '--pred-dir', pred_dir, '--nproc', '2',
             '--out', str(tmp_path / 'result.json'))
    ours, official = json.load(open(tmp_path / 'result.json')), official_semantic(gt_files, pred_dir)
    assert 0.1 < official['averageScoreClasses'] < 0.9 and 0.1 < official['averageScoreInstClasses'] < 0.9
    assert same_scores(ours, official)
    assert ours['averageScoreInstCategories'] == pytest.approx(official['averageScoreInstCategories'], abs=1e-12)
    for gt_path in gt_files:
        pred_path = glob.glob(osp.join(pred_dir, osp.basename(gt_path).replace('_gtFine_labelIds', '*')))[0]
        image = count_image(cv2.imread(pred_path, cv2.IMREAD_UNCHANGED), cv2.imread(gt_path, cv2.IMREAD_UNCHANGED),
                            cv2.imread(gt_path.replace('labelIds', 'instanceIds'), cv2.IMREAD_UNCHANGED))
        assert same_scores(evaluate([image]), official_semantic([gt_path], pred_dir)), gt_path


def test_semantic_evaluator_bad_inputs(label_predictions, mini_root, tmp_path):
    """A train-id-like value, a missing prediction and a corrupt PNG: one line naming the file."""
    pred_dir, gt_files = label_predictions
    bad_dir = tmp_path / 'bad'
    bad_dir.mkdir()
    for path in glob.glob(f'{pred_dir}/*.png'):
        os.symlink(path, bad_dir / osp.basename(path))
    first = sorted(bad_dir.iterdir())[0]
    first.unlink()
    cv2.imwrite(str(first), np.full((256, 512), 255, np.uint8))
    args = ('tools/analysis_tools/eval_cityscapes.py', '--task', 'semantic', '--gt-root',
            str(mini_root / 'gtFine' / 'val'), '--pred-dir', str(bad_dir), '--nproc', '2')
    for damage, expected in ((None, 'holds label id 255'), ('corrupt', 'cannot decode image'),
                             ('missing', 'no prediction files for')):
        if damage == 'corrupt':
            first.write_bytes(b'not a png')
        elif damage == 'missing':
            first.unlink()
        proc = run_tool(*args, check=False)
        error = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 2 and expected in error and first.name[:20] in error, proc.stderr


@pytest.mark.parametrize('line, expected', [
    ('{mask} 26 high', 'expected an integer label id and a numeric confidence, got "26" and "high"'),
    ('{mask} 26 nan', 'confidence nan is not a finite number'),
    ('{mask} car 0.9', 'expected an integer label id and a numeric confidence, got "car"'),
    ('{mask} 99 0.9', '99 is not a Cityscapes label id'),
    ('{small} 26 0.9', 'is 8x4, the ground truth 512x256'),
    ('{mask} 26', 'expected "<mask png> <label id> <confidence>"'),
])
def test_instance_evaluator_bad_lines_name_file_and_line(predictions, mini_root, tmp_path, line, expected):
    """Each bad prediction line stops the file tool with one line: file, line number, what is wrong."""
    pred_dir, gt_files, _ = predictions
    bad_dir = tmp_path / 'bad'
    shutil.copytree(pred_dir, bad_dir)
    first = next(path for path in sorted(bad_dir.glob('*.txt')) if path.read_text().strip())
    mask = open(first).readline().split()[0]
    cv2.imwrite(str(bad_dir / 'small.png'), np.zeros((4, 8), np.uint8))
    with open(first, 'a') as f:
        f.write(line.format(mask=mask, small='small.png') + '\n')
    number = len(open(first).read().splitlines())
    proc = run_tool('tools/analysis_tools/eval_cityscapes.py', '--task', 'instance', '--gt-root',
                    str(mini_root / 'gtFine' / 'val'), '--pred-dir', str(bad_dir), '--nproc', '2', check=False)
    error = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and error.startswith(f'error: {first}:{number}: ') and expected in error, proc.stderr


def test_train_id_predictions_are_refused_unless_allowed(mini_root, tmp_path):
    """Ground-truth predictions written in train ids instead of label ids score 0 everywhere: the
    evaluator stops with one line naming the file, and evaluates them only when told to."""
    for gt in sorted(glob.glob(f'{mini_root}/gtFine/val/*/*_gtFine_labelTrainIds.png')):
        train_ids = cv2.imread(gt, cv2.IMREAD_UNCHANGED)
        train_ids[train_ids == 255] = 0  # a model predicts a class everywhere
        cv2.imwrite(str(tmp_path / osp.basename(gt).replace('_gtFine_labelTrainIds', '_pred')), train_ids)
    args = ('tools/analysis_tools/eval_cityscapes.py', '--task', 'semantic', '--gt-root',
            str(mini_root / 'gtFine' / 'val'), '--pred-dir', str(tmp_path), '--nproc', '2')
    proc = run_tool(*args, check=False)
    error = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and error.startswith(f'error: {tmp_path}/') and 'looks like train ids' in error
    assert 'tools/infer.py' in error and '--allow-trainid-like' in error and 'Traceback' not in proc.stderr
    allowed = run_tool(*args, '--allow-trainid-like', '--out', str(tmp_path / 'result.json'))
    assert json.load(open(tmp_path / 'result.json'))['averageScoreClasses'] < 0.1, allowed.stdout
