"""Reading and checking configs: one line naming the file, line or key for each mistake."""
import ast
import copy
import difflib
import glob
import importlib
import inspect
import os
import os.path as osp
import re
import sys
from functools import reduce
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from mmengine.config import Config
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS, MODELS, DefaultScope, Registry
from mmengine.runner import Runner

from mmcityscapes.cityscapes.checks import check_sizes
from mmcityscapes.cityscapes.files import IMAGE_SUFFIX, annotation_name, is_cityscapes_root
from mmcityscapes.common.errors import UserError
from mmcityscapes.common.io import is_complete_png, read_json

FAMILIES = dict(mmseg='semantic', mmdet='instance')  # default scope -> model family
MASKFORMER_MODELS = ('Mask2Former', 'MaskFormer')  # their test_cfg turns each kind of result on
PANOPTIC_MODELS = ('PanopticFusion', 'PanopticFPN', *MASKFORMER_MODELS)  # mmdet models with panoptic results
# the results each evaluator scores
EVALUATED_TASK = dict(CityscapesPanopticMetric='panoptic', CityscapesInstanceMetric='instance',
                      ClasswiseCocoMetric='instance', SemSegMetric='semantic', IoUMetric='semantic',
                      SegmentationMetric='semantic')
SELF_LOADING_MODELS = ('PanopticFusion',)  # models whose config names the weights they load


def default_work_dir(config: str, prefix: str = '') -> str:
    """``work_dirs/<prefix><config name>``: where a tool writes when given no ``--work-dir``."""
    return osp.join('work_dirs', prefix + osp.splitext(osp.basename(config))[0])


def work_dir_of(cfg: Config, config: str, work_dir: Optional[str] = None) -> str:
    """The work dir of a run: ``--work-dir``, else the config's ``work_dir``, else ``default_work_dir``."""
    return work_dir or cfg.get('work_dir') or default_work_dir(config)


def config_keys(node: dict, prefix: str = '') -> List[str]:
    """Every dotted key path of a config's nested dicts."""
    keys = []
    for key, value in node.items():
        keys.append(prefix + key)
        if isinstance(value, dict):
            keys += config_keys(value, f'{prefix}{key}.')
    return keys


def load_config(path: str, options: Optional[dict] = None) -> Config:
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


# Where and how a run is launched, not what it trains: not compared when it resumes.
LAUNCH_KEYS = ('work_dir', 'experiment_name', 'resume', 'load_from', 'launcher', 'env_cfg', 'model_wrapper_cfg',
               'custom_imports')


def flat_config(cfg: Config) -> Dict[str, Any]:
    """``{dotted key: value}`` of every leaf of a config as it would be saved (its ``pretty_text``
    read back, so that two configs compare alike whatever built them), the launch keys left out
    and the dataset root written as ``<data_root>``, so that a dataset that moved is no change."""
    content = Config.fromstring(cfg.pretty_text, file_format='.py').to_dict()
    root = content.get('data_root')

    def leaves(node: Any, prefix: str) -> Iterator[Tuple[str, Any]]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from leaves(value, f'{prefix}{key}.')
        elif isinstance(node, (list, tuple)) and any(isinstance(item, dict) for item in node):
            for i, value in enumerate(node):
                yield from leaves(value, f'{prefix}{i}.')
        else:
            if isinstance(node, str) and root:
                node = node.replace(root, '<data_root>')
            yield prefix[:-1], node
    return {key: value for key, value in leaves(content, '')
            if key.split('.')[0] not in LAUNCH_KEYS and key != 'data_root'}


def config_changes(old: Config, new: Config) -> List[Tuple[str, Any, Any]]:
    """``(key, old value, new value)`` of every leaf that differs (``flat_config``); a missing
    value is None."""
    before, after = flat_config(old), flat_config(new)
    return [(key, before.get(key), after.get(key)) for key in sorted(set(before) | set(after))
            if before.get(key) != after.get(key)]


def innermost_dataset(dataset_cfg: dict) -> dict:
    """The dataset inside wrappers such as RepeatDataset."""
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def test_metainfo(cfg: Config) -> dict:
    """The metainfo (classes, palette) of the config's test dataset: its dataset class's,
    updated by the config's ``metainfo``."""
    dataset = innermost_dataset(cfg.test_dataloader.dataset)
    registry = importlib.import_module(f'{cfg.default_scope}.registry').DATASETS
    return {**registry.get(dataset.type).METAINFO, **(dataset.get('metainfo') or {})}


def dataset_paths(dataset_cfg: dict) -> List[Tuple[str, str, str]]:
    """(kind, path, data_root) of every annotation file and folder a dataset config reads,
    wrappers included."""
    found = []
    for dataset in leaf_datasets(dataset_cfg):
        root = dataset.get('data_root') or ''
        paths = [('annotation file', dataset['ann_file'])] if dataset.get('ann_file') else []
        paths += [('folder', prefix) for prefix in (dataset.get('data_prefix') or {}).values() if prefix]
        found += [(kind, osp.join(root, path), root) for kind, path in paths]
    return found


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


def leaf_datasets(dataset_cfg: dict) -> List[dict]:
    """The datasets of a dataset config, inside wrappers and concatenations."""
    if 'datasets' in dataset_cfg:
        return [leaf for part in dataset_cfg['datasets'] for leaf in leaf_datasets(part)]
    return leaf_datasets(dataset_cfg['dataset']) if 'dataset' in dataset_cfg else [dataset_cfg]


def labelled_images(dataset_cfg: dict) -> List[Tuple[str, Union[str, Tuple[int, int]]]]:
    """``(image path, its annotation)`` of every annotation of a dataset config: the images of a
    COCO file with their recorded ``(width, height)`` (mmdet, which would fail on a missing one in
    a worker), or the images of each label map or listed stem with the label map (mmseg, which
    lists the image folder and would silently drop a labelled image that is missing)."""
    root, prefix = dataset_cfg.get('data_root') or '', dataset_cfg.get('data_prefix') or {}
    ann_file = osp.join(root, dataset_cfg['ann_file']) if dataset_cfg.get('ann_file') else None
    if ann_file and ann_file.endswith('.json'):
        img_dir = osp.join(root, prefix.get('img', ''))
        images = read_json(ann_file).get('images', [])
        if dataset_cfg.get('type') == 'CityscapesPanopticDataset':  # image ids are frames, in city folders
            return [(osp.join(img_dir, image['id'].split('_')[0], image['id'] + IMAGE_SUFFIX),
                     (image['width'], image['height'])) for image in images]
        return [(osp.join(img_dir, image['file_name']), (image['width'], image['height'])) for image in images]
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
    return [(osp.join(img_dir, stem + img_suffix), osp.join(seg_dir, stem + seg_suffix)) for stem in sorted(stems)]


def check_buildable(cfg: Config) -> None:
    """Stop with one line naming the config key if the dataloaders' sizes are not numbers they
    take, or the model's constructors refuse the config (a misspelt argument, with the closest
    one they take; an unknown type; a value out of range): the model is built once here, before
    the work dir is made, instead of failing in a traceback once the Runner builds it."""
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader') or {}
        for key, least in (('batch_size', 1), ('num_workers', 0)):
            value = loader.get(key, least)
            if not isinstance(value, int) or value < least:
                raise UserError(f'{split}_dataloader.{key}={value!r}: must be a whole number of at least {least}')
    if 'model' not in cfg:
        return
    try:
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
            MODELS.build(copy.deepcopy(cfg.model))  # mmseg's builders edit their config
    except (TypeError, ValueError, KeyError, AssertionError) as e:
        with MODELS.switch_scope_and_registry(cfg.get('default_scope')) as registry:
            raise UserError(build_error(cfg.model, e, registry)) from None


def build_error(model_cfg: dict, error: Exception, registry: Registry) -> str:
    """One line for an exception a model constructor raised: for an argument it does not take or
    an unknown type, the config key and the closest name ``registry`` or the class takes."""
    text = str(error.args[0] if isinstance(error, KeyError) and error.args else error).strip()  # KeyError quotes it
    message = text.splitlines()[0] if text else type(error).__name__
    argument = re.search(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'", message)
    unknown = re.search(r'^(\S+) is not in the (\S+) registry', message)
    if argument and (path := config_path_of(model_cfg, lambda node: argument.group(2) in node, 'model')):
        owner = reduce(lambda node, key: node[int(key)] if isinstance(node, list) else node[key],
                       path.split('.')[1:], model_cfg)
        cls = registry.get(owner['type']) if isinstance(owner.get('type'), str) else owner.get('type')
        taken = {name for klass in inspect.getmro(cls) if klass is not object
                 for name in inspect.signature(klass.__init__).parameters} - {'self', 'args', 'kwargs'}
        closest = difflib.get_close_matches(argument.group(2), taken, n=1)
        hint = f'; did you mean {path}.{closest[0]}?' if closest else ''
        return f'{path}.{argument.group(2)}: {argument.group(1)} takes no argument {argument.group(2)!r}{hint}'
    if unknown and (path := config_path_of(model_cfg, lambda node: node.get('type') == unknown.group(1), 'model')):
        closest = difflib.get_close_matches(unknown.group(1), list(registry.module_dict), n=1)
        hint = f'; did you mean {closest[0]}?' if closest else ''
        return f'{path}.type: {unknown.group(1)!r} is no type of the {unknown.group(2)} registry{hint}'
    return f'model: {message}'


def config_path_of(node: Any, holds: Callable[[dict], bool], prefix: str) -> Optional[str]:
    """The dotted path of the first dict under ``node`` (itself included) for which ``holds`` is true."""
    if isinstance(node, dict):
        if holds(node):
            return prefix
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = enumerate(node)
    else:
        return None
    return next((path for k, v in items if (path := config_path_of(v, holds, f'{prefix}.{k}'))), None)


def check_hook_arguments(cfg: Config) -> None:
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


def names_its_weights(cfg: Config) -> bool:
    """Whether the config's model loads its own weights (a fusion of trained models), so that
    testing it takes no checkpoint."""
    return cfg.model.get('type') in SELF_LOADING_MODELS


def model_family(cfg: Config) -> str:
    """``'semantic'`` (an mmseg config), ``'instance'`` or ``'panoptic'`` (an mmdet config whose
    model predicts panoptic results), by the default scope and the model type."""
    scope = cfg.get('default_scope')
    if scope not in FAMILIES:
        raise UserError(f'default_scope {scope!r}: expected one of {", ".join(FAMILIES)}')
    return 'panoptic' if scope == 'mmdet' and cfg.model.get('type') in PANOPTIC_MODELS else FAMILIES[scope]


def predicted_tasks(cfg: Config) -> Tuple[str, ...]:
    """The results a config's model gives at test time: its family's (``model_family``); a fusion
    of trained models also gives its parts' instance and semantic results, and a MaskFormer-style
    model those its ``test_cfg`` turns on (``panoptic_on``, ``instance_on``, ``semantic_on``; mmdet's
    own fusion head has no semantic inference: one line)."""
    family = model_family(cfg)
    model_type = cfg.model.get('type')
    if model_type == 'PanopticFusion':
        return 'panoptic', 'instance', 'semantic'
    if model_type not in MASKFORMER_MODELS:
        return (family,)
    test_cfg = cfg.model.get('test_cfg') or {}
    head = (cfg.model.get('panoptic_fusion_head') or {}).get('type')
    if test_cfg.get('semantic_on') and head == 'MaskFormerFusionHead':
        raise UserError("model.test_cfg.semantic_on: mmdet's MaskFormerFusionHead has no semantic inference; set "
                        "model.panoptic_fusion_head.type='MaskFormerSemanticFusionHead' (configs/"
                        'mask2former_r50_cityscapes_panoptic.py does)')
    return tuple(task for task, key, default in (('panoptic', 'panoptic_on', True), ('instance', 'instance_on', False),
                                                 ('semantic', 'semantic_on', False)) if test_cfg.get(key, default))


def check_evaluated_tasks(cfg: Config, splits: Sequence[str]) -> None:
    """Stop with one line when an evaluator of ``splits`` scores a result the model does not give
    (``predicted_tasks``): the evaluator would fail on the first batch, in a traceback."""
    if not cfg.get('model'):
        return
    predicted = None
    for split in splits:
        evaluators = cfg.get(f'{split}_evaluator') or []
        for evaluator in evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]:
            task = EVALUATED_TASK.get(str(evaluator.get('type')).split('.')[-1])
            predicted = predicted or predicted_tasks(cfg)
            if task and task not in predicted:
                hint = (f'set model.test_cfg.{task}_on=True' if cfg.model.get('type') in MASKFORMER_MODELS
                        else f'remove it from {split}_evaluator')
                raise UserError(f'{split}_evaluator: {evaluator["type"]} scores {task} results, which the model '
                                f'({cfg.model.get("type")}) does not give ({", ".join(predicted)} only): {hint}')
