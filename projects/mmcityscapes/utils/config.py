"""Reading and checking configs: one line naming the file, line or key for each mistake."""
import ast
import difflib
import glob
import importlib
import inspect
import os
import os.path as osp
import re
import sys
from typing import Optional

from mmengine.config import Config
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS
from mmengine.runner import Runner

from mmcityscapes.cityscapes.files import IMAGE_SUFFIX, annotation_name, is_cityscapes_root
from mmcityscapes.common.errors import UserError
from mmcityscapes.common.io import is_complete_png, read_json

FAMILIES = dict(mmseg='semantic', mmdet='instance')  # default scope -> model family


def default_work_dir(config: str, prefix: str = '') -> str:
    """``work_dirs/<prefix><config name>``: where a tool writes when given no ``--work-dir``."""
    return osp.join('work_dirs', prefix + osp.splitext(osp.basename(config))[0])


def work_dir_of(cfg: Config, config: str, work_dir: Optional[str] = None) -> str:
    """The work dir of a run: ``--work-dir``, else the config's ``work_dir``, else ``default_work_dir``."""
    return work_dir or cfg.get('work_dir') or default_work_dir(config)


def config_keys(node, prefix=''):
    """Every dotted key path of a config's nested dicts."""
    keys = []
    for key, value in node.items():
        keys.append(prefix + key)
        if isinstance(value, dict):
            keys += config_keys(value, f'{prefix}{key}.')
    return keys


def load_config(path: str, options=None):
    """``Config.fromfile(path)`` with ``--cfg-options`` merged. A syntax error (in the config or
    a base) stops with one line naming file and line; an option key that matches nothing in the
    config is merged as mmengine does, with a warning naming the closest existing key (not for
    runner configs, whose options go to the configs they run)."""
    if not osp.isfile(path):
        raise UserError(f'config not found: {path}')
    try:
        cfg = Config.fromfile(path)
    except (SyntaxError, re.error) as e:  # mmengine parses the source without its file name
        try:
            with open(path) as f:
                ast.parse(f.read(), filename=path)
        except SyntaxError as own:
            raise UserError(f'{path}:{own.lineno}: {own.msg}') from None
        root = os.environ.get('CITYSCAPES_ROOT', '')
        if root.endswith('"') or '"""' in root or '\\' in root:  # mmengine pastes {{$VAR}} into the source
            raise UserError(f'CITYSCAPES_ROOT={root!r}: the configs cannot hold a path with a backslash or a final '
                            'double quote; rename the folder or point a symbolic link at it') from None
        raise UserError(f'{path} (in one of its _base_ files): {e}') from None
    if options:
        existing = set(config_keys(cfg._cfg_dict))
        for key in options:
            if 'runner_type' not in cfg and key not in existing and not re.search(r'\.\d+(\.|$)', key):
                closest = difflib.get_close_matches(key, existing, n=1)
                hint = f'; did you mean {closest[0]}?' if closest else ''
                print(f'warning: --cfg-options {key} matches no key of {path}, it is added{hint}', file=sys.stderr)
        cfg.merge_from_dict(options)
    return cfg


def innermost_dataset(dataset_cfg):
    """The dataset inside wrappers such as RepeatDataset."""
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def test_metainfo(cfg: Config):
    """The metainfo (classes, palette) of the config's test dataset: its dataset class's,
    updated by the config's ``metainfo``."""
    dataset = innermost_dataset(cfg.test_dataloader.dataset)
    registry = importlib.import_module(f'{cfg.default_scope}.registry').DATASETS
    return {**registry.get(dataset.type).METAINFO, **(dataset.get('metainfo') or {})}


def dataset_paths(dataset_cfg):
    """(kind, path, data_root) of every annotation file and folder a dataset config reads,
    wrappers included."""
    found = []
    for dataset in leaf_datasets(dataset_cfg):
        root = dataset.get('data_root') or ''
        paths = [('annotation file', dataset['ann_file'])] if dataset.get('ann_file') else []
        paths += [('folder', prefix) for prefix in (dataset.get('data_prefix') or {}).values() if prefix]
        found += [(kind, osp.join(root, path), root) for kind, path in paths]
    return found


def check_dataset_files(cfg: Config, splits):
    """Stop with one line naming the first missing annotation file or folder that the ``splits``'
    dataloaders and evaluators read, or the labelled images that are missing or truncated (count
    and one of them), before anything is built (mmdet/mmseg would fail later, in a traceback, or drop the
    image without a word)."""
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
            labelled = labelled_images(dataset)
            missing = [path for path in labelled if not osp.isfile(path)]
            if missing:
                raise UserError(f'{split}_dataloader: {len(missing)} of {len(labelled)} labelled images are missing '
                                f'(e.g. {missing[0]}); restore them or remove their annotations')
            truncated = [path for path in labelled if path.endswith('.png') and not is_complete_png(path)]
            if truncated:
                raise UserError(f'{split}_dataloader: {len(truncated)} of {len(labelled)} labelled images are '
                                f'truncated (e.g. {truncated[0]}); download them again')


def leaf_datasets(dataset_cfg):
    """The datasets of a dataset config, inside wrappers and concatenations."""
    if 'datasets' in dataset_cfg:
        return [leaf for part in dataset_cfg['datasets'] for leaf in leaf_datasets(part)]
    return leaf_datasets(dataset_cfg['dataset']) if 'dataset' in dataset_cfg else [dataset_cfg]


def labelled_images(dataset_cfg):
    """The image path of every annotation of a dataset config: the images of a COCO file (mmdet,
    which would fail on a missing one in a worker), or of each label map or listed stem (mmseg,
    which lists the image folder and would silently drop a labelled image that is missing)."""
    root, prefix = dataset_cfg.get('data_root') or '', dataset_cfg.get('data_prefix') or {}
    ann_file = osp.join(root, dataset_cfg['ann_file']) if dataset_cfg.get('ann_file') else None
    if ann_file and ann_file.endswith('.json'):
        img_dir = osp.join(root, prefix.get('img', ''))
        return [osp.join(img_dir, image['file_name']) for image in read_json(ann_file).get('images', [])]
    if 'seg_map_path' not in prefix:
        return []
    img_dir, seg_dir = osp.join(root, prefix.get('img_path', '')), osp.join(root, prefix['seg_map_path'])
    img_suffix = dataset_cfg.get('img_suffix', IMAGE_SUFFIX)
    seg_suffix = dataset_cfg.get('seg_map_suffix', annotation_name('', 'labelTrainIds.png'))
    if ann_file:
        with open(ann_file) as f:
            stems = [line.strip() for line in f if line.strip()]
    else:
        stems = [osp.relpath(path, seg_dir)[:-len(seg_suffix)]
                 for path in glob.glob(osp.join(seg_dir, '**', '*' + seg_suffix), recursive=True)]
    return [osp.join(img_dir, stem + img_suffix) for stem in sorted(stems)]


def check_hook_arguments(cfg: Config):
    """Stop with one line on a hook argument the hook does not take, before training starts
    (mmengine's CheckpointHook hands unknown ones to ``Runner.save_checkpoint``, which fails at
    the first checkpoint)."""
    hooks = [(f'default_hooks.{name}', hook) for name, hook in (cfg.get('default_hooks') or {}).items()]
    hooks += [(f'custom_hooks[{i}]', hook) for i, hook in enumerate(cfg.get('custom_hooks') or [])]
    with HOOKS.switch_scope_and_registry(cfg.get('default_scope')) as registry:
        for where, hook in hooks:
            if not isinstance(hook, dict):  # None disables a default hook; a built hook is checked by Python
                continue
            hook_class = hook['type'] if inspect.isclass(hook['type']) else registry.get(hook['type'])
            if hook_class is None:
                raise UserError(f'{where}: unknown hook type {hook["type"]!r}')
            parameters = inspect.signature(hook_class).parameters
            accepted = {'type', 'priority', '_scope_'} | {name for name, p in parameters.items() if p.kind not in (
                p.VAR_POSITIONAL, p.VAR_KEYWORD)}
            if issubclass(hook_class, CheckpointHook):
                accepted |= set(inspect.signature(Runner.save_checkpoint).parameters) - {'self'}
            elif any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
                continue  # passes its extra arguments on, e.g. EMAHook to its averaged model
            for key in hook:
                if key not in accepted:
                    closest = difflib.get_close_matches(key, accepted, n=1)
                    hint = f'; did you mean {closest[0]}?' if closest else ''
                    raise UserError(f'{where}: {hook_class.__name__} takes no argument {key!r}{hint}')


def model_family(cfg: Config):
    """``'semantic'`` (an mmseg config) or ``'instance'`` (an mmdet config), by the default scope."""
    scope = cfg.get('default_scope')
    if scope not in FAMILIES:
        raise UserError(f'default_scope {scope!r}: expected one of {", ".join(FAMILIES)}')
    return FAMILIES[scope]
