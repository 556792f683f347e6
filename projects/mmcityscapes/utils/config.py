"""Loading configs, comparing them and naming their work dirs.

A mistake in a config or ``--cfg-options`` stops with one line naming the file, line or key."""
import ast
import difflib
import os
import os.path as osp
import re
import sys
from typing import Any, Dict, Iterator, List, Optional, Tuple

from mmengine.config import Config

from mmcityscapes.common.errors import UserError


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
