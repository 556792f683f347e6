"""Prepare a Cityscapes root (real or generated) for mmseg/mmdet training (``prepare``; the
command line is tools/dataset_converters/cityscapes.py).

Writes, next to the official files:
  * ``gt{Fine,Coarse}/**/*_labelTrainIds.png`` from the polygons, with cityscapesscripts'
    ``createLabelImage`` (pixel-identical to its createTrainIdLabelImgs);
  * ``annotations/instancesonly_filtered_gtFine_{train,val}.json`` (COCO, from the instanceIds
    PNGs, with the same images, categories, boxes, areas, RLE masks and crowd flags as mmdet's
    own converter), plus ``..._train_tune.json`` for the tuning subset;
  * ``gtFine/cityscapes_panoptic_{train,val}.json`` and ``gtFine/cityscapes_panoptic_{train,val}/``
    (the panoptic ground truth, as cityscapesscripts' createPanopticImgs writes it: ``panoptic``);
  * ``splits/``: ``coarse_pretrain.txt`` (train_extra images), ``tune.txt`` (train images),
    ``cv<k>/fold<i>_{train,val}.txt`` and ``val_{finetune,holdout}.txt`` (with COCO subsets), in
    mmseg's ``ann_file`` format (``city/city_x_y``).

Partial roots are prepared as far as they go: a split without images is skipped, annotations
without polygons get their labelTrainIds from ``*_labelIds.png``, and splits that too few images
cannot make are not written; each is said, and the outputs an earlier run wrote for them are
removed. Before anything is written: the folders and files each step reads, complete image PNGs,
every image's size against its annotations' (PNG headers), and every annotation to convert
(polygons cityscapesscripts can draw, label ids Cityscapes has). An instance-id PNG with an
unknown label id stops the COCO step after the labelTrainIds, which are complete and correct.

Idempotent (up-to-date, complete outputs are skipped; a truncated one is rebuilt), parallel,
and every output file is written atomically; temporary files that a killed run left behind are
removed on the next run. Each problem stops the run with one line naming the file.
"""
import glob
import os
import os.path as osp
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Set, Tuple

import numpy as np
import pycocotools.mask as mask_util
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.helpers.labels import id2label, labels
from cityscapesscripts.preparation.json2labelImg import createLabelImage
from PIL import Image

from mmcityscapes.cityscapes import files, panoptic
from mmcityscapes.cityscapes.checks import check_sizes, polygon_problem, unknown_label_ids
from mmcityscapes.cityscapes.files import COARSE, FINE, IMAGE_SUFFIX, IMAGES, coco_file, image_stem, list_images
from mmcityscapes.cityscapes.labels import TRAIN_ID_OF_LABEL, is_instance, label_id
from mmcityscapes.common.errors import UserError
from mmcityscapes.common.io import (
    atomic_output,
    is_complete_png,
    is_up_to_date,
    read_json,
    read_png,
    remove_stale_temporaries,
    write_json,
    write_lines,
)
from mmcityscapes.common.parallel import track_parallel

COCO_SPLITS = ('train', 'val')
THING_CATEGORIES = [label for label in labels if label.hasInstances and not label.ignoreInEval]


class SplitOptions(NamedTuple):
    """How the split files are drawn (the staged recipe's subset sizes by default)."""
    coarse_subset: int = 4120  # train_extra images for coarse backbone pretraining
    tune_subset: int = 372  # train images for hyper-parameter tuning
    folds: int = 5  # cross-validation folds
    val_finetune: float = 0.5  # share of val for the optional stage-3 fine-tuning; the rest is held out
    split_seed: int = 0


def load_polygons(json_path: str) -> Annotation:
    """A ``*_polygons.json`` as cityscapesscripts reads it, once ``polygon_problem`` finds it drawable."""
    problem = polygon_problem(json_path)
    if problem:
        raise UserError(problem)
    annotation = Annotation()
    annotation.fromJsonFile(json_path)
    return annotation


def train_ids_path(source: str) -> str:
    """The ``*_labelTrainIds.png`` drawn from a ``*_polygons.json`` or mapped from a ``*_labelIds.png``."""
    return source.replace('_polygons.json' if source.endswith('.json') else '_labelIds.png', '_labelTrainIds.png')


def needs_train_ids(source: str) -> bool:
    out_path = train_ids_path(source)
    return not (is_up_to_date(out_path, [source]) and is_complete_png(out_path))


def source_problem(source: str) -> Optional[tuple]:
    """What keeps a train-id source from converting: ``('polygon', message)`` or ``('labels',
    path, pixels, value)`` for label ids Cityscapes does not have (they would become ignore, 255,
    without a word), or None."""
    if source.endswith('_polygons.json'):
        problem = polygon_problem(source)
        return ('polygon', problem) if problem else None
    pixels, value = unknown_label_ids(source)
    return ('labels', source, pixels, value) if pixels else None


def check_train_id_sources(sources: Sequence[str], nproc: int) -> None:
    """Every annotation to be converted, checked before any is written: polygons cityscapesscripts
    can draw, label ids Cityscapes has; one line with the count and one of them."""
    problems = [p for p in track_parallel(source_problem, list(sources), nproc) if p]
    polygons = [p[1] for p in problems if p[0] == 'polygon']
    if polygons:
        raise UserError(f'{len(polygons)} of {len(sources)} annotation files cannot be converted (e.g. {polygons[0]}): '
                        'fix or delete those objects; nothing was written')
    labelled = [p for p in problems if p[0] == 'labels']
    if labelled:
        _, path, _, value = labelled[0]
        raise UserError(f'{len(labelled)} *_labelIds.png files hold {sum(p[2] for p in labelled)} pixels whose value '
                        f'is no Cityscapes label id (e.g. {value} in {path}): correct them; nothing was written')


def make_train_ids(source: str) -> bool:
    """``*_labelTrainIds.png`` from a ``*_polygons.json`` (as cityscapesscripts draws it) or, for
    annotations without polygons, from the ``*_labelIds.png`` (the same pixels: both are drawn
    from the polygons). Returns whether it was written."""
    if not needs_train_ids(source):
        return False
    if source.endswith('_polygons.json'):
        image = createLabelImage(load_polygons(source), 'trainIds')
    else:
        image = Image.fromarray(TRAIN_ID_OF_LABEL[read_png(source)])
    with atomic_output(train_ids_path(source)) as tmp:
        image.save(tmp)
    return True


def annotated_images(root: str) -> List[Tuple[str, str]]:
    """``(image, annotation PNG)`` of every image of ``root`` and each of its label-id and
    instance-id PNGs (fine and coarse)."""
    pairs = []
    for image in sorted(glob.glob(osp.join(root, IMAGES, '*', '*', '*' + IMAGE_SUFFIX))):
        split = osp.basename(osp.dirname(osp.dirname(image)))
        stem = image_stem(image, files.split_dir(root, split))
        for kind, suffix in ((FINE, 'labelIds.png'), (FINE, 'instanceIds.png'), (COARSE, 'labelIds.png')):
            annotation = files.annotation_path(root, split, stem, suffix, kind)
            if osp.isfile(annotation):
                pairs.append((image, annotation))
    return pairs


def train_id_sources(root: str) -> Tuple[List[str], int]:
    """Per annotation, its polygons, or its labelIds PNG where it has no polygons (several
    public samples ship only the PNGs); and how many use that fallback."""
    sources, fallback = [], 0
    for kind in (FINE, COARSE):
        polygons = set(glob.glob(osp.join(root, kind, '*', '*', '*_polygons.json')))
        for label_ids in sorted(glob.glob(osp.join(root, kind, '*', '*', '*_labelIds.png'))):
            json_path = label_ids.replace('_labelIds.png', '_polygons.json')
            if json_path not in polygons:
                sources.append(label_ids)
                fallback += 1
        sources += sorted(polygons)
    return sources, fallback


def instance_annotations(task: Tuple[str, str, str]) -> Tuple[dict, List[dict]]:
    """COCO image + annotations of one image, as mmdet's converter computes them."""
    img_path, split_dir, gt_dir = task
    stem = image_stem(img_path, split_dir)
    inst_path = osp.join(gt_dir, files.annotation_name(stem, 'instanceIds.png'))
    instances = read_png(inst_path)
    if instances.ndim != 2:
        raise UserError(f'{inst_path}: expected a single-channel instance-id PNG')
    anns = []
    for inst_id in np.unique(instances):
        label = id2label.get(label_id(inst_id))
        if label is None:
            raise UserError(f'{inst_path}: unknown label id {label_id(inst_id)} (pixel value {inst_id})')
        if inst_id < 24 or not label.hasInstances or label.ignoreInEval:
            continue
        rle = mask_util.encode(np.asarray(instances == inst_id, np.uint8, order='F')[:, :, None])[0]
        bbox, area = mask_util.toBbox(rle), mask_util.area(rle)
        rle['counts'] = rle['counts'].decode()
        anns.append(dict(iscrowd=int(not is_instance(inst_id)), category_id=label.id,
                         bbox=bbox.tolist(), area=area.tolist(), segmentation=rle))
    city = osp.dirname(stem)
    image = dict(file_name=osp.join(city, osp.basename(img_path)), height=instances.shape[0],
                 width=instances.shape[1],
                 segm_file=files.annotation_name(stem, 'labelIds.png'))
    return image, anns


def coco_json(images_and_anns: Iterable[Tuple[dict, List[dict]]]) -> dict:
    coco = dict(images=[], categories=[dict(id=c.id, name=c.name) for c in THING_CATEGORIES],
                annotations=[])
    for img_id, (image, anns) in enumerate(images_and_anns):
        coco['images'].append(dict(image, id=img_id))
        for ann in anns:
            coco['annotations'].append(dict(ann, image_id=img_id, id=len(coco['annotations'])))
    return coco


def subset_coco(coco: dict, file_names: Set[str]) -> dict:
    keep = {img['id'] for img in coco['images'] if img['file_name'] in file_names}
    return dict(images=[img for img in coco['images'] if img['id'] in keep],
                categories=coco['categories'],
                annotations=[a for a in coco['annotations'] if a['image_id'] in keep])


def instance_inputs(data_root: str, split: str) -> Tuple[List[str], List[str]]:
    """(images, their gtFine instanceIds PNGs) of a split; a missing PNG stops the run."""
    split_dir, images = list_images(data_root, split)
    inputs = [files.annotation_path(data_root, split, image_stem(p, split_dir), 'instanceIds.png') for p in images]
    missing = next((p for p in inputs if not osp.isfile(p)), None)
    if missing:
        raise UserError(f'missing file {missing}')
    return images, inputs


def convert_instances(data_root: str, split: str, nproc: int) -> dict:
    out_path = coco_file(data_root, split)
    split_dir, gt_dir = files.split_dir(data_root, split), files.split_dir(data_root, split, FINE)
    images, inputs = instance_inputs(data_root, split)
    if is_up_to_date(out_path, inputs):
        try:
            coco = read_json(out_path)
            print(f'{out_path}: up to date')
            return coco
        except UserError as e:
            print(f'{e}: converting again')
    print(f'converting {len(images)} {split} instance maps to COCO')
    results = track_parallel(instance_annotations,
                                      [(p, split_dir, gt_dir) for p in images], nproc)
    coco = coco_json(results)
    write_json(coco, out_path)
    print(f'wrote {out_path}: {len(coco["images"])} images, {len(coco["annotations"])} instances')
    return coco


def split_outputs(root: str, split: str) -> List[str]:
    """The files the converter writes for a split (``train``, ``val``)."""
    split_root = osp.join(root, 'splits')
    panoptic_json, panoptic_folder = panoptic.ground_truth_paths(root, split)
    outputs = [coco_file(root, split), panoptic_json, *glob.glob(osp.join(panoptic_folder, '*.png'))]
    if split == 'train':
        return [*outputs, coco_file(root, 'train_tune'), osp.join(split_root, 'tune.txt'),
                *glob.glob(osp.join(split_root, 'cv*', 'fold*_*.txt'))]
    return [*outputs, *val_finetune_outputs(root)]


def val_finetune_outputs(root: str) -> List[str]:
    """The files of the val fine-tuning split (``configs/maskrcnn_stage3_valft.py``)."""
    names = ('val_finetune', 'val_holdout')
    return [coco_file(root, name) for name in names] + [osp.join(root, 'splits', f'{name}.txt') for name in names]


def remove_outputs(paths: Sequence[str], what: str) -> None:
    """Remove an earlier run's outputs that this run no longer writes, so that no config reads
    them as if they were current; say so."""
    existing = [path for path in paths if osp.isfile(path)]
    for path in existing:
        os.remove(path)
    if existing:
        print(f'removed {len(existing)} files an earlier run wrote for {what} (e.g. {existing[0]})')


def write_split_files(data_root: str, options: SplitOptions, cocos: Dict[str, dict]) -> None:
    rng = np.random.default_rng(options.split_seed)
    split_root = osp.join(data_root, 'splits')

    extra_dir, extra = list_images(data_root, 'train_extra')
    extra = [image_stem(p, extra_dir) for p in extra
             if osp.isfile(files.annotation_path(data_root, 'train_extra', image_stem(p, extra_dir),
                                                 'labelTrainIds.png', COARSE))]
    if extra:
        chosen = sorted(rng.choice(extra, min(options.coarse_subset, len(extra)), replace=False))
        write_lines(chosen, osp.join(split_root, 'coarse_pretrain.txt'))
        print(f'coarse pretraining subset: {len(chosen)} of {len(extra)} train_extra images')
    else:
        print('no train_extra images with gtCoarse labels: skipping the coarse pretraining subset')

    if 'train' in cocos:
        write_train_splits(data_root, options, cocos['train'], rng)
    if 'val' in cocos:
        write_val_splits(data_root, options, cocos['val'], rng)


def write_train_splits(data_root: str, options: SplitOptions, coco: dict, rng: np.random.Generator) -> None:
    split_root = osp.join(data_root, 'splits')
    train_dir, train = list_images(data_root, 'train')
    train = [image_stem(p, train_dir) for p in train]
    tune = sorted(rng.choice(train, min(options.tune_subset, len(train)), replace=False))
    write_lines(tune, osp.join(split_root, 'tune.txt'))
    write_json(subset_coco(coco, {t + IMAGE_SUFFIX for t in tune}), coco_file(data_root, 'train_tune'))
    print(f'tuning subset: {len(tune)} of {len(train)} train images')

    if len(train) < options.folds:
        print(f'{len(train)} train images cannot make {options.folds} cross-validation folds: '
              f'no splits/cv{options.folds}/ '
              f'(pass --folds {len(train)} or fewer)')
        remove_outputs(glob.glob(osp.join(split_root, f'cv{options.folds}', 'fold*_*.txt')),
                       f'{options.folds} cross-validation folds')
        return
    folds = np.array_split(rng.permutation(train), options.folds)
    for k, fold in enumerate(folds):
        held_out = set(fold)
        write_lines(sorted(held_out), osp.join(split_root, f'cv{options.folds}', f'fold{k}_val.txt'))
        write_lines([t for t in train if t not in held_out],
                    osp.join(split_root, f'cv{options.folds}', f'fold{k}_train.txt'))
    print(f'{options.folds} cross-validation folds of ~{len(folds[0])} images')


def write_val_splits(data_root: str, options: SplitOptions, coco: dict, rng: np.random.Generator) -> None:
    split_root = osp.join(data_root, 'splits')
    val_dir, val = list_images(data_root, 'val')
    val = [image_stem(p, val_dir) for p in val]
    finetune = set(rng.choice(val, int(round(options.val_finetune * len(val))), replace=False))
    if not finetune or len(finetune) == len(val):
        print(f'{len(val)} val images cannot be split into val_finetune and val_holdout (--val-finetune '
              f'{options.val_finetune}): no such split, so configs/maskrcnn_stage3_valft.py cannot run on this root')
        remove_outputs(val_finetune_outputs(data_root), 'val_finetune and val_holdout')
        return
    for name, part in (('val_finetune', sorted(finetune)), ('val_holdout', [v for v in val if v not in finetune])):
        write_lines(part, osp.join(split_root, f'{name}.txt'))
        write_json(subset_coco(coco, {t + IMAGE_SUFFIX for t in part}), coco_file(data_root, name))
    print(f'val: {len(finetune)} images for optional fine-tuning, {len(val) - len(finetune)} held out')


def prepare(root: str, nproc: int = 1, options: Optional[SplitOptions] = None) -> None:
    """Write every derived file of the Cityscapes ``root`` that its contents allow (see above)."""
    options = options or SplitOptions()
    for required in (IMAGES, FINE):
        if not osp.isdir(osp.join(root, required)):
            raise UserError(f'missing folder {osp.join(root, required)} '
                            '(expected the official Cityscapes layout: leftImg8bit/, gtFine/, gtCoarse/)')
    stale = remove_stale_temporaries(root)
    if stale:
        print(f'removed {stale} temporary files of interrupted runs')
    # what can be built, checked before anything is written
    splits = [split for split in COCO_SPLITS if list_images(root, split)[1]]
    if not splits:
        raise UserError(f'no *{IMAGE_SUFFIX} images in {files.split_dir(root, "train")} or .../val')
    for split in splits:
        instance_inputs(root, split)
    images = sorted(glob.glob(osp.join(root, IMAGES, '*', '*', '*' + IMAGE_SUFFIX)))
    broken = [path for path in images if not is_complete_png(path)]
    if broken:  # a broken download would kill training hours in, at the first batch that reads it
        raise UserError(f'{len(broken)} of {len(images)} images under {osp.join(root, IMAGES)} are truncated or '
                        f'not PNG files (e.g. {broken[0]}): download or unpack them again')
    print(f'{len(images)} images under {osp.join(root, IMAGES)} are complete PNG files')
    check_sizes(annotated_images(root), root)
    sources, fallback = train_id_sources(root)
    if not sources:
        raise UserError(f'no *_polygons.json or *_labelIds.png under {osp.join(root, FINE)}')
    check_train_id_sources([source for source in sources if needs_train_ids(source)], nproc)
    for split in COCO_SPLITS:
        if split not in splits:
            print(f'no images in {files.split_dir(root, split)}: nothing of the {split} split is prepared')
            remove_outputs(split_outputs(root, split), f'the {split} split')
    if fallback:
        print(f'warning: {fallback} annotation files have no *_polygons.json: their labelTrainIds are mapped '
              'from *_labelIds.png')
    print(f'creating labelTrainIds for {len(sources)} annotation files')
    written = track_parallel(make_train_ids, sources, nproc)
    print(f'{sum(written)} written, {len(written) - sum(written)} up to date')
    cocos = {split: convert_instances(root, split, nproc) for split in splits}
    for split in splits:
        panoptic.convert_split(root, split, nproc)
    write_split_files(root, options, cocos)
