"""configs/ in model-zoo form: every config in a metafile and in configs/README.md, its recipe on its first line."""
import glob
import os.path as osp
import re

import yaml

from conftest import REPO

CONFIGS = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs', '*.py')))


def test_every_config_is_listed_once():
    listed = [model['Config'] for path in sorted(glob.glob(osp.join(REPO, 'configs', 'metafiles', '*.yaml')))
              for model in yaml.safe_load(open(path))['Models']]
    assert sorted(listed) == CONFIGS
    table = open(osp.join(REPO, 'configs', 'README.md')).read()
    rows = re.findall(r'^\| `([\w.-]+\.py)` \|', table, re.M)
    assert sorted(f'configs/{row}' for row in rows) == CONFIGS


def test_first_line_states_the_recipe():
    """'<architecture>, <GPUs>x<images> images, <schedule>, <crop or scale>, Cityscapes ...'."""
    recipe = re.compile(r'^# [\w.-]+.*, \d+x\d+ images, \d+k? (iterations|epochs)( a fold)?, '
                        r'(\d+x\d+ crops|\d+-\d+ scale), Cityscapes')
    for config in CONFIGS:
        first = open(osp.join(REPO, config)).readline()
        if config == 'configs/maskrcnn_staged.py':  # runs the stage configs, each with its own recipe
            assert first.startswith('# mask-rcnn_r50_fpn staged fine-tuning: stages 0-3'), first
        else:
            assert recipe.match(first), f'{config}: {first}'
