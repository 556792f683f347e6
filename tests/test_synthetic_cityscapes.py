"""The generated mini-Cityscapes: official layout, real label set, determinism, safety."""
import glob
import json
import os.path as osp

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.helpers.labels import id2label, name2label
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from cityscapesscripts.preparation.json2labelImg import createLabelImage

from conftest import generate_mini, run_tool

THINGS = ['person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle']
STUFF = ['road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
         'traffic sign', 'vegetation', 'terrain', 'sky']


def test_official_layout_and_names(raw_mini):
    root = str(raw_mini)
    for split, n in dict(train=10, val=4, test=2, train_extra=4).items():
        images = glob.glob(f'{root}/leftImg8bit/{split}/*/*_leftImg8bit.png')
        assert len(images) == n
        for img in images:
            city, name = img.split('/')[-2:]
            assert name.startswith(city + '_') and name.endswith('_000019_leftImg8bit.png')
            stem = img.replace('leftImg8bit/', 'X/', 1)[:-len('_leftImg8bit.png')]
            fine = [stem.replace('X/', 'gtFine/') + f'_gtFine_{s}' for s in
                    ('polygons.json', 'labelIds.png', 'instanceIds.png', 'color.png')]
            coarse = [stem.replace('X/', 'gtCoarse/') + f'_gtCoarse_{s}' for s in
                      ('polygons.json', 'labelIds.png', 'instanceIds.png', 'color.png')]
            assert all(osp.isfile(f) for f in fine) == (split != 'train_extra')
            assert all(osp.isfile(f) for f in coarse) == (split != 'test')
    assert cv2.imread(images[0]).shape == (256, 512, 3)


def test_pngs_are_rasterized_from_the_polygons(raw_mini):
    for json_path in glob.glob(f'{raw_mini}/gt*/*/*/*_polygons.json')[:6]:
        ann = Annotation()
        ann.fromJsonFile(json_path)
        label_ids = cv2.imread(json_path.replace('_polygons.json', '_labelIds.png'), cv2.IMREAD_UNCHANGED)
        instance_ids = cv2.imread(json_path.replace('_polygons.json', '_instanceIds.png'), cv2.IMREAD_UNCHANGED)
        assert instance_ids.dtype == np.uint16
        np.testing.assert_array_equal(label_ids, np.asarray(createLabelImage(ann, 'ids')))
        np.testing.assert_array_equal(instance_ids, np.asarray(createInstanceImage(ann, 'ids')))


def test_scenes_use_the_real_label_set(raw_mini):
    labels, crowd, instances_per_class = set(), set(), {}
    for path in glob.glob(f'{raw_mini}/gtFine/train/*/*_instanceIds.png'):
        ids = np.unique(cv2.imread(path, cv2.IMREAD_UNCHANGED))
        for v in ids:
            label = id2label[int(v) // 1000 if v >= 1000 else int(v)].name
            labels.add(label)
            if v >= 1000:
                instances_per_class[label] = instances_per_class.get(label, 0) + 1
            elif name2label[label].hasInstances:
                crowd.add(label)
    assert set(STUFF) <= labels
    assert set(THINGS) - {'train', 'bus'} <= set(instances_per_class)  # rarer classes may miss in 10 images
    assert crowd, 'crowd groups (e.g. persongroup) are present'
    assert instances_per_class['car'] >= 20


def test_coarse_leaves_pixels_unlabeled(raw_mini):
    fine = cv2.imread(glob.glob(f'{raw_mini}/gtFine/train/*/*_labelIds.png')[0], cv2.IMREAD_UNCHANGED)
    coarse_path = glob.glob(f'{raw_mini}/gtFine/train/*/*_labelIds.png')[0].replace('gtFine', 'gtCoarse')
    coarse = cv2.imread(coarse_path, cv2.IMREAD_UNCHANGED)
    assert (fine == 0).mean() < 0.01
    assert (coarse == 0).mean() > 0.2


def test_test_split_has_blank_labels(raw_mini):
    for path in glob.glob(f'{raw_mini}/gtFine/test/*/*_labelIds.png'):
        assert not cv2.imread(path, cv2.IMREAD_UNCHANGED).any()


def test_images_are_textured_and_noisy(raw_mini):
    label_path = glob.glob(f'{raw_mini}/gtFine/train/*/*_labelIds.png')[0]
    labels = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
    image_path = label_path.replace('gtFine', 'leftImg8bit').replace('_leftImg8bit_labelIds', '_leftImg8bit')
    img = cv2.imread(image_path).astype(np.float64)
    road = img[labels == name2label['road'].id]
    assert road.std(0).mean() > 4  # not a flat colour: a model has to learn


def test_deterministic_for_a_seed(tmp_path):
    a = generate_mini(tmp_path / 'a', train=2, val=1, test=1, extra=1)
    b = generate_mini(tmp_path / 'b', train=2, val=1, test=1, extra=1)
    c = generate_mini(tmp_path / 'c', seed=1, train=2, val=1, test=1, extra=1)
    files = sorted(osp.relpath(p, a) for p in glob.glob(f'{a}/**/*.*', recursive=True))
    assert files == sorted(osp.relpath(p, b) for p in glob.glob(f'{b}/**/*.*', recursive=True))
    for rel in files:
        with open(a / rel, 'rb') as fa, open(b / rel, 'rb') as fb:
            assert fa.read() == fb.read(), rel
    img = 'leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png'
    assert not np.array_equal(cv2.imread(str(a / img)), cv2.imread(str(c / img)))


def test_full_resolution_scene(tmp_path):
    run_tool('tools/misc/synthetic_cityscapes.py', str(tmp_path / 'full'), '--train', '1', '--val', '0',
             '--test', '0', '--extra', '0', '--height', '1024', '--width', '2048')
    img = glob.glob(f'{tmp_path}/full/leftImg8bit/train/*/*.png')[0]
    assert cv2.imread(img).shape == (1024, 2048, 3)
    polygons = json.load(open(glob.glob(f'{tmp_path}/full/gtFine/train/*/*_polygons.json')[0]))
    assert (polygons['imgHeight'], polygons['imgWidth']) == (1024, 2048)


def test_refuses_to_overwrite_data_it_did_not_make(tmp_path):
    real = tmp_path / 'cityscapes'
    (real / 'leftImg8bit').mkdir(parents=True)
    proc = run_tool('tools/misc/synthetic_cityscapes.py', str(real), '--train', '1', check=False)
    assert proc.returncode != 0
    assert 'refusing' in proc.stderr and str(real) in proc.stderr
    assert sorted(p.name for p in real.iterdir()) == ['leftImg8bit']


@pytest.mark.parametrize('same', [True, False])
def test_regeneration(tmp_path, same):
    out = generate_mini(tmp_path / 'cs', train=2, val=1, test=1, extra=1)
    first = sorted(glob.glob(f'{out}/leftImg8bit/*/*/*.png'))
    proc = run_tool('tools/misc/synthetic_cityscapes.py', str(out), '--train', '2' if same else '1',
                    '--val', '1', '--test', '1', '--extra', '1')
    if same:
        assert 'already generated' in proc.stdout
    now = sorted(glob.glob(f'{out}/leftImg8bit/*/*/*.png'))
    assert len(now) == len(first) - (0 if same else 1)  # no stale files left from before
