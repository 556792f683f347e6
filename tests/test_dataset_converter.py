"""tools/dataset_converters/cityscapes.py against cityscapesscripts and mmdet's own converter."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess

import cv2
import mmdet
import numpy as np
import pytest

from conftest import PY, REPO, generate_mini, run_tool


@pytest.fixture()
def tiny(tmp_path):
    return generate_mini(tmp_path / 'cityscapes', train=5, val=1, test=0, extra=2)


def convert(root, *extra, check=True):
    return run_tool('tools/dataset_converters/cityscapes.py', str(root), '--nproc', '2', *extra,
                    check=check)


def test_train_ids_identical_to_cityscapesscripts(raw_mini, mini_root, tmp_path):
    reference = tmp_path / 'reference'
    shutil.copytree(raw_mini, reference)
    subprocess.run([PY, '-m', 'cityscapesscripts.preparation.createTrainIdLabelImgs'], check=True,
                   env=dict(os.environ, CITYSCAPES_DATASET=str(reference)), capture_output=True)
    expected = sorted(glob.glob(f'{reference}/gt*/*/*/*_labelTrainIds.png'))
    ours = sorted(glob.glob(f'{mini_root}/gt*/*/*/*_labelTrainIds.png'))
    assert len(expected) == len(ours) == 10 + 4 + 2 + (10 + 4 + 4)  # fine train/val/test + coarse
    for exp in expected:
        mine = osp.join(mini_root, osp.relpath(exp, reference))
        np.testing.assert_array_equal(cv2.imread(mine, cv2.IMREAD_UNCHANGED),
                                      cv2.imread(exp, cv2.IMREAD_UNCHANGED), err_msg=mine)


def _by_image(coco):
    names = {img['id']: img['file_name'] for img in coco['images']}
    anns = {}
    for a in coco['annotations']:
        key = (a['category_id'], a['iscrowd'], tuple(a['bbox']), a['area'], a['segmentation']['counts'])
        anns.setdefault(names[a['image_id']], []).append(key)
    return {k: sorted(v) for k, v in anns.items()}


def test_coco_identical_to_mmdet_converter(raw_mini, mini_root, tmp_path):
    script = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'dataset_converters', 'cityscapes.py')
    subprocess.run([PY, script, str(raw_mini), '-o', str(tmp_path)], check=True, capture_output=True)
    for split in ('train', 'val'):
        theirs = json.load(open(tmp_path / f'instancesonly_filtered_gtFine_{split}.json'))
        ours = json.load(open(mini_root / 'annotations' / f'instancesonly_filtered_gtFine_{split}.json'))
        assert ours['categories'] == theirs['categories']
        strip = lambda images: sorted((i['file_name'], i['height'], i['width'], i['segm_file']) for i in images)  # noqa
        assert strip(ours['images']) == strip(theirs['images'])
        assert _by_image(ours) == _by_image(theirs)
        assert len(ours['annotations']) > 10 * len(ours['images'])
        assert any(a['iscrowd'] for a in ours['annotations'])


def test_split_files(mini_root):
    read = lambda p: open(mini_root / 'splits' / p).read().split()  # noqa
    train = sorted(osp.relpath(p, mini_root / 'leftImg8bit' / 'train')[:-len('_leftImg8bit.png')]
                   for p in glob.glob(f'{mini_root}/leftImg8bit/train/*/*.png'))
    assert read('tune.txt') == train  # fewer than 372 images: all of them
    assert len(read('coarse_pretrain.txt')) == 4
    held_out = [read(f'cv5/fold{k}_val.txt') for k in range(5)]
    assert sorted(sum(held_out, [])) == train  # disjoint and complete
    for k in range(5):
        assert sorted(read(f'cv5/fold{k}_train.txt') + held_out[k]) == train
    tune = json.load(open(mini_root / 'annotations' / 'instancesonly_filtered_gtFine_train_tune.json'))
    assert len(tune['images']) == 10


def test_fold_file_loads_as_an_mmseg_dataset(mini_root):
    from mmseg.datasets import CityscapesDataset
    fold = CityscapesDataset(data_root=str(mini_root), ann_file='splits/cv5/fold0_val.txt',
                             data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
                             pipeline=[])
    assert len(fold) == 2
    assert osp.isfile(fold[0]['seg_map_path'])


def test_subsets_and_folds_are_deterministic(tiny):
    convert(tiny, '--coarse-subset', '1', '--tune-subset', '3')
    first = {p: open(p).read() for p in glob.glob(f'{tiny}/splits/**/*.txt', recursive=True)}
    shutil.rmtree(tiny / 'splits')
    convert(tiny, '--coarse-subset', '1', '--tune-subset', '3')
    assert first == {p: open(p).read() for p in glob.glob(f'{tiny}/splits/**/*.txt', recursive=True)}
    assert len(open(tiny / 'splits' / 'tune.txt').read().split()) == 3


def test_second_run_is_a_no_op(tiny):
    convert(tiny)
    outputs = glob.glob(f'{tiny}/gt*/*/*/*_labelTrainIds.png') + glob.glob(f'{tiny}/annotations/*.json')
    mtimes = {p: os.stat(p).st_mtime_ns for p in outputs}
    proc = convert(tiny)
    assert '0 written' in proc.stdout and 'up to date' in proc.stdout
    assert mtimes == {p: os.stat(p).st_mtime_ns for p in outputs}


def test_broken_outputs_and_stale_temporaries_are_repaired(tiny):
    """A killed run's temporary file is removed (a running process's stays); a truncated
    labelTrainIds PNG and a truncated COCO file, though newer than their inputs, are rebuilt."""
    convert(tiny)
    city_dir = osp.dirname(sorted(glob.glob(f'{tiny}/gtFine/train/*/*_labelTrainIds.png'))[0])
    stale = subprocess.Popen(['true'])
    stale.wait()  # a process id that no longer runs
    (tiny / 'annotations' / f'.tmp{stale.pid}_instancesonly_filtered_gtFine_val.json').write_bytes(b'')
    live = osp.join(city_dir, f'.tmp{os.getpid()}_x.png')
    open(live, 'wb').close()
    png = sorted(glob.glob(f'{city_dir}/*_labelTrainIds.png'))[0]
    intact = open(png, 'rb').read()
    open(png, 'wb').write(intact[:len(intact) // 2])
    coco_path = tiny / 'annotations' / 'instancesonly_filtered_gtFine_train.json'
    coco = json.load(open(coco_path))
    coco_path.write_text(json.dumps(coco)[:100])
    proc = convert(tiny)
    assert 'removed 1 temporary files of interrupted runs' in proc.stdout and '1 written' in proc.stdout
    assert open(png, 'rb').read() == intact and json.load(open(coco_path)) == coco
    assert not glob.glob(f'{tiny}/annotations/.tmp*') and osp.isfile(live)


@pytest.mark.slow
def test_partial_roots_prepare_what_exists(tiny, tmp_path):
    """Val without polygons (labelTrainIds mapped from labelIds, the same pixels), a single val
    image (no val_finetune/holdout split), too few train images for the folds: each is said,
    the rest is prepared. A root with train only is prepared too."""
    convert(tiny)
    val_train_ids = {p: open(p, 'rb').read() for p in glob.glob(f'{tiny}/gtFine/val/*/*_labelTrainIds.png')}
    for path in list(val_train_ids) + glob.glob(f'{tiny}/gtFine/val/*/*_polygons.json'):
        os.remove(path)
    shutil.rmtree(tiny / 'splits')
    proc = convert(tiny, '--folds', '6')
    assert f'warning: {len(val_train_ids)} annotation files have no *_polygons.json' in proc.stdout
    assert {p: open(p, 'rb').read() for p in val_train_ids} == val_train_ids
    assert '1 val images cannot be split into val_finetune and val_holdout' in proc.stdout
    assert '5 train images cannot make 6 cross-validation folds' in proc.stdout
    assert not osp.exists(tiny / 'splits' / 'cv6') and not osp.exists(tiny / 'splits' / 'val_finetune.txt')
    assert osp.isfile(tiny / 'splits' / 'tune.txt')
    proc = run_tool('tools/train.py', 'configs/maskrcnn_stage3_valft.py', '--work-dir', str(tmp_path / 'valft'),
                    env=dict(os.environ, CITYSCAPES_ROOT=str(tiny)), check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        f'error: train_dataloader: missing annotation file {tiny}/annotations/instancesonly_filtered_gtFine_'
        f'val_finetune.json (`python tools/dataset_converters/cityscapes.py {tiny}` writes it or says why it '
        'cannot)'), proc.stderr[-2000:]

    train_only = generate_mini(tmp_path / 'train_only', train=3, val=0, test=0, extra=0)
    proc = convert(train_only, '--folds', '3')
    assert f'no images in {train_only}/leftImg8bit/val: nothing of the val split is prepared' in proc.stdout
    assert osp.isfile(train_only / 'annotations' / 'instancesonly_filtered_gtFine_train.json')
    assert not osp.exists(train_only / 'annotations' / 'instancesonly_filtered_gtFine_val.json')
    assert len(glob.glob(f'{train_only}/splits/cv3/*.txt')) == 6


def _assert_clean_failure(proc, root, *needles):
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith('error: ') and all(n in lines[-1] for n in needles), proc.stderr
    assert not glob.glob(f'{root}/**/.tmp*', recursive=True), 'temporary files left behind'


def test_missing_folder(tmp_path):
    (tmp_path / 'cs' / 'leftImg8bit').mkdir(parents=True)
    proc = convert(tmp_path / 'cs', check=False)
    _assert_clean_failure(proc, tmp_path, 'missing folder', str(tmp_path / 'cs' / 'gtFine'))


def test_corrupt_png(tiny):
    bad = sorted(glob.glob(f'{tiny}/gtFine/val/*/*_instanceIds.png'))[0]
    with open(bad, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n garbage')
    proc = convert(tiny, check=False)
    _assert_clean_failure(proc, tiny, 'cannot decode', bad)
    assert not osp.exists(tiny / 'annotations' / 'instancesonly_filtered_gtFine_val.json')


def test_unknown_label_id(tiny):
    bad = sorted(glob.glob(f'{tiny}/gtFine/train/*/*_instanceIds.png'))[0]
    ids = cv2.imread(bad, cv2.IMREAD_UNCHANGED)
    ids[:4, :4] = 77
    cv2.imwrite(bad, ids)
    proc = convert(tiny, check=False)
    _assert_clean_failure(proc, tiny, 'unknown label id 77', bad)
    assert not osp.exists(tiny / 'annotations' / 'instancesonly_filtered_gtFine_train.json')


def test_unknown_label_name(tiny):
    bad = sorted(glob.glob(f'{tiny}/gtFine/train/*/*_polygons.json'))[0]
    payload = json.load(open(bad))
    payload['objects'][3]['label'] = 'flying saucer'
    json.dump(payload, open(bad, 'w'))
    proc = convert(tiny, check=False)
    _assert_clean_failure(proc, tiny, "unknown label 'flying saucer'", bad)
    assert not osp.exists(bad.replace('_polygons.json', '_labelTrainIds.png'))


@pytest.mark.parametrize('config', ['configs/mini/deeplabv3_r18_mini.py', 'configs/mini/maskrcnn_r18_mini.py'])
def test_missing_or_truncated_labelled_image_stops_before_training(mini_root, tmp_path, monkeypatch, config):
    """mmseg would silently train without a labelled image whose file is missing, mmdet fail in a
    worker, and both at the first batch that reads a truncated one: the pre-flight check names
    it, with the count, for both families."""
    from mmcityscapes.common.errors import UserError
    from mmcityscapes.datasets.preflight import check_dataset_files
    from mmcityscapes.utils.config import load_config
    root = tmp_path / 'cityscapes'
    shutil.copytree(mini_root, root, symlinks=True)
    monkeypatch.setenv('CITYSCAPES_ROOT', f'{root}/')
    check_dataset_files(load_config(osp.join(REPO, config)), ('train', 'val'))  # complete: no error
    image = sorted(glob.glob(f'{root}/leftImg8bit/train/*/*_leftImg8bit.png'))[3]
    data = open(image, 'rb').read()
    os.remove(image)
    with pytest.raises(UserError) as error:
        check_dataset_files(load_config(osp.join(REPO, config)), ('train', 'val'))
    assert str(error.value).startswith('train_dataloader: 1 of 10 labelled images are missing (e.g. ')
    assert osp.basename(image) in str(error.value)
    with open(image, 'wb') as f:  # a download cut short
        f.write(data[:len(data) // 2])
    with pytest.raises(UserError) as error:
        check_dataset_files(load_config(osp.join(REPO, config)), ('train', 'val'))
    assert str(error.value) == (f'train_dataloader: 1 of 10 labelled images are truncated (e.g. {image}); '
                                'download them again')
    half = cv2.resize(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), (256, 128))
    cv2.imwrite(image, half)  # another size than its annotation: misplaced boxes, misaligned labels
    with pytest.raises(UserError) as error:
        check_dataset_files(load_config(osp.join(REPO, config)), ('train', 'val'))
    annotation = 'its annotation' if 'maskrcnn' in config else image.replace('leftImg8bit', 'gtFine').replace(
        'gtFine.png', 'gtFine_labelTrainIds.png')
    assert str(error.value) == (f'train_dataloader: 1 of 10 images differ in size from their annotations (e.g. '
                                f'{image} is 256x128, {annotation} 512x256): replace them or remove their annotations')


def test_an_empty_split_is_named_and_stale_outputs_are_not_used(mini_root, tmp_path, monkeypatch):
    """val images and annotations gone: the converter removes what it wrote for val earlier (a
    config would read it as current) and says so; the pre-flight check names the empty split."""
    from mmcityscapes.common.errors import UserError
    from mmcityscapes.datasets.preflight import check_dataset_files
    from mmcityscapes.utils.config import load_config
    root = tmp_path / 'cityscapes'
    shutil.copytree(mini_root, root, symlinks=True)
    for folder in glob.glob(f'{root}/leftImg8bit/val/*') + glob.glob(f'{root}/gtFine/val/*'):
        shutil.rmtree(folder)
    proc = convert(root)
    assert 'nothing of the val split is prepared' in proc.stdout
    assert f'removed 10 files an earlier run wrote for the val split (e.g. {root}/annotations/' in proc.stdout
    assert not glob.glob(f'{root}/annotations/*val*') and not glob.glob(f'{root}/splits/val_*')
    monkeypatch.setenv('CITYSCAPES_ROOT', f'{root}/')
    with pytest.raises(UserError, match=r'^val_dataloader: missing annotation file .*_gtFine_val\.json'):
        check_dataset_files(load_config(osp.join(REPO, 'configs/mini/maskrcnn_r18_mini.py')), ('train', 'val'))
    with pytest.raises(UserError) as error:
        check_dataset_files(load_config(osp.join(REPO, 'configs/mini/deeplabv3_r18_mini.py')), ('train', 'val'))
    assert str(error.value) == (f'val_dataloader: no labelled image in {root}/gtFine/val (an empty split): prepare '
                                'the dataset again or point the config at another split')


def test_image_of_another_size_than_its_annotation_stops_the_preparation(tiny):
    image = sorted(glob.glob(f'{tiny}/leftImg8bit/train/*/*_leftImg8bit.png'))[2]
    cv2.imwrite(image, cv2.resize(cv2.imread(image), (256, 128)))
    proc = convert(tiny, check=False)
    annotation = image.replace('leftImg8bit', 'gtFine').replace('gtFine.png', 'gtFine_labelIds.png')
    _assert_clean_failure(proc, tiny, f'{tiny}: 1 of ', f' images differ in size from their annotations (e.g. {image} '
                          f'is 256x128, {annotation} 512x256)')
    assert not osp.exists(tiny / 'annotations') and not glob.glob(f'{tiny}/gt*/*/*/*_labelTrainIds.png')


def test_annotations_that_cannot_be_converted_stop_it_before_anything_is_written(tiny):
    """A polygon of one point (cityscapesscripts cannot draw it) and, in an annotation without
    polygons, label-id pixels that are no Cityscapes label id (they would become ignore without a
    word): one line each, with the file (and object) or the count of pixels, nothing written."""
    bad = sorted(glob.glob(f'{tiny}/gtFine/train/*/*_polygons.json'))[1]
    payload = json.load(open(bad))
    payload['objects'][2]['polygon'] = payload['objects'][2]['polygon'][:1]
    json.dump(payload, open(bad, 'w'))
    proc = convert(tiny, check=False)
    _assert_clean_failure(proc, tiny, '1 of ', f'annotation files cannot be converted (e.g. {bad}: object 2 (',
                          'has a polygon of 1 point, which cityscapesscripts cannot draw)')
    assert not glob.glob(f'{tiny}/gt*/*/*/*_labelTrainIds.png')
    os.remove(bad)  # now mapped from its labelIds PNG, which holds a value Cityscapes has no label for
    label_ids = bad.replace('_polygons.json', '_labelIds.png')
    ids = cv2.imread(label_ids, cv2.IMREAD_UNCHANGED)
    ids[:4, :5] = 77
    cv2.imwrite(label_ids, ids)
    proc = convert(tiny, check=False)
    _assert_clean_failure(proc, tiny, '1 *_labelIds.png files hold 20 pixels whose value is no Cityscapes label id '
                          f'(e.g. 77 in {label_ids})')
    assert not glob.glob(f'{tiny}/gt*/*/*/*_labelTrainIds.png')


def test_truncated_input_image_stops_the_preparation(tiny):
    """A broken download (an image cut short) is found when the root is prepared, not at the first
    training batch that reads it: one line with the count and the file, nothing written."""
    image = sorted(glob.glob(f'{tiny}/leftImg8bit/train/*/*_leftImg8bit.png'))[1]
    data = open(image, 'rb').read()
    with open(image, 'wb') as f:
        f.write(data[:len(data) // 2])
    proc = convert(tiny, check=False)
    _assert_clean_failure(proc, tiny, '1 of ', ' are truncated or not PNG files (e.g. ', image)
    assert not osp.exists(tiny / 'annotations')
