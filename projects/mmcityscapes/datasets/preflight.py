"""Pre-flight checks of the files a config's splits read, before anything is built.

A missing annotation file or folder, or labelled images that are none, missing, truncated or of
another size than their annotations, stop with one line."""
import os.path as osp
from typing import Sequence

from mmengine.config import Config

from mmcityscapes.cityscapes.checks import check_sizes
from mmcityscapes.cityscapes.files import is_cityscapes_root
from mmcityscapes.common.errors import UserError
from mmcityscapes.common.io import is_complete_png
from mmcityscapes.datasets.layout import dataset_paths, labelled_images, leaf_datasets


def check_dataset_files(cfg: Config, splits: Sequence[str]) -> None:
    """Stop with one line naming the first missing annotation file or folder that the ``splits``'
    dataloaders and evaluators read, or the labelled images that are none, missing, truncated or
    of another size than their annotations (``check_labelled_images``), before anything is built
    (mmdet/mmseg would fail later, in a traceback, train on misaligned pairs, or drop the image
    without a word)."""
    for split in splits:
        loader, evaluators = cfg.get(f'{split}_dataloader'), cfg.get(f'{split}_evaluator') or []
        if not loader:
            continue
        paths = dataset_paths(loader['dataset'])
        paths += [('annotation file', e['ann_file'], paths[0][2] if paths else '') for e in
                  (evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]) if e.get('ann_file')]
        for kind, path, root in paths:
            if not (osp.isfile(path) if kind == 'annotation file' else osp.isdir(path)):
                hint = (f'`python tools/dataset_converters/cityscapes.py {root}` writes it or says why it cannot'
                        if is_cityscapes_root(root) else
                        f'no Cityscapes at {root!r}: set CITYSCAPES_ROOT or see data/README.md')
                raise UserError(f'{split}_dataloader: missing {kind} {path} ({hint})')
        for dataset in leaf_datasets(loader['dataset']):
            check_labelled_images(dataset, f'{split}_dataloader')


def check_labelled_images(dataset: dict, where: str) -> None:
    """Stop with one line (count, one of them) if the labelled images of a dataset config are
    none, missing, truncated, or of another size than their annotations (PNG headers)."""
    pairs = labelled_images(dataset)
    labelled = [image for image, _ in pairs]
    if not pairs and (dataset.get('data_prefix') or {}).get('seg_map_path', dataset.get('ann_file')):
        source = dataset.get('ann_file') or dataset['data_prefix']['seg_map_path']
        raise UserError(f'{where}: no labelled image in {osp.join(dataset.get("data_root") or "", source)} (an empty '
                        'split): prepare the dataset again or point the config at another split')
    missing = [path for path in labelled if not osp.isfile(path)]
    if missing:
        raise UserError(f'{where}: {len(missing)} of {len(labelled)} labelled images are missing '
                        f'(e.g. {missing[0]}); restore them or remove their annotations')
    truncated = [path for path in labelled if path.endswith('.png') and not is_complete_png(path)]
    if truncated:
        raise UserError(f'{where}: {len(truncated)} of {len(labelled)} labelled images are '
                        f'truncated (e.g. {truncated[0]}); download them again')
    check_sizes(pairs, where)
