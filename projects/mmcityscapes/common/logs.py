"""Training logs: the scalars mmengine writes to ``<timestamp>/vis_data/scalars.json``."""
import glob
import json
import os.path as osp
from typing import List, Tuple

from mmcityscapes.common.errors import UserError


def read_scalars(work_dir: str) -> Tuple[List[dict], List[dict]]:
    """(training entries, validation entries) of every run's ``<timestamp>/vis_data/scalars.json``
    in an mmengine work dir, in time order; training entries are those with a learning rate."""
    entries = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            try:
                entries += [json.loads(line) for line in f if line.strip()]
            except json.JSONDecodeError as e:
                raise UserError(f'cannot parse {path}: {e}') from None
    return [e for e in entries if 'lr' in e], [e for e in entries if 'lr' not in e]
