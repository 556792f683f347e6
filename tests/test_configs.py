"""configs/ in model-zoo form: every config in a metafile and in configs/README.md, its recipe on its first line."""
import glob
import os.path as osp
import re

import pytest
import yaml
from mmengine.config import Config

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
    """'<architecture>, <GPUs>x<images> images, <schedule>, <crop or scale>, Cityscapes ...', or
    '<what>, test only, <scale>, Cityscapes ...' for a config with nothing to train."""
    recipe = re.compile(r'^# [\w.-]+.*, \d+x\d+ images, \d+k? (iterations|epochs)( a fold)?, '
                        r'(\d+x\d+ crops|\d+-\d+ scale), Cityscapes')
    for config in CONFIGS:
        first = open(osp.join(REPO, config)).readline()
        if config == 'configs/maskrcnn_staged.py':  # runs the stage configs, each with its own recipe
            assert first.startswith('# mask-rcnn_r50_fpn staged fine-tuning: stages 0-3'), first
        elif Config.fromfile(osp.join(REPO, config)).train_cfg is None:
            assert re.match(r'^# [\w ]+, test only, \d+x\d+ scale, Cityscapes', first), f'{config}: {first}'
        else:
            assert recipe.match(first), f'{config}: {first}'


def test_every_path_follows_cityscapes_root(monkeypatch, tmp_path):
    """With $CITYSCAPES_ROOT set, every annotation file and folder that a config's dataloaders and
    evaluators read lies under it (none falls back to mmdet's/mmseg's data/cityscapes/), and the
    evaluators are the plugin's."""
    from mmcityscapes.datasets.layout import dataset_paths
    from mmcityscapes.utils.config import load_config
    root = str(tmp_path / 'my root')
    monkeypatch.setenv('CITYSCAPES_ROOT', root)
    configs = [c for c in CONFIGS + sorted(osp.relpath(p, REPO) for p in glob.glob(f'{REPO}/configs/mini/*.py'))
               if 'staged' not in c]  # the staged configs name stage configs, checked themselves
    for config in configs:
        cfg = load_config(osp.join(REPO, config))
        for split in ('train', 'val', 'test'):
            if cfg.get(f'{split}_dataloader') is None:  # a test-only config
                continue
            paths = [path for _, path, _ in dataset_paths(cfg[f'{split}_dataloader']['dataset'])]
            evaluators = cfg.get(f'{split}_evaluator', [])
            for evaluator in evaluators if isinstance(evaluators, list) else [evaluators]:
                assert evaluator['type'].split('.')[-1] in (  # mmseg.SegmentationMetric in an mmdet config
                    'ClasswiseCocoMetric', 'CityscapesInstanceMetric', 'SegmentationMetric', 'IoUMetric',
                    'CityscapesPanopticMetric'), (config, evaluator['type'])
                paths += [evaluator['ann_file']] if 'ann_file' in evaluator else []
            assert paths and all(path.startswith(root) for path in paths), (config, split, paths)


@pytest.mark.parametrize('root', ['/data/say "hi"', '/data/cityscapes\\'])
def test_unusable_cityscapes_root_is_named(root, monkeypatch):
    """mmengine pastes $CITYSCAPES_ROOT into the config's source: a value that breaks it is named,
    instead of a syntax error blamed on the config and a temporary file."""
    from mmcityscapes.common.errors import UserError
    from mmcityscapes.utils.config import load_config
    monkeypatch.setenv('CITYSCAPES_ROOT', root)
    with pytest.raises(UserError, match=r"^CITYSCAPES_ROOT='/data/.*': the configs cannot hold a path"):
        load_config(osp.join(REPO, 'configs/unet_r34.py'))


@pytest.mark.parametrize('config', [c for c in CONFIGS if 'runner_type' not in Config.fromfile(osp.join(REPO, c))
                                    and Config.fromfile(osp.join(REPO, c)).train_cfg is not None])
def test_every_config_scales_its_lr_by_mmengine_s_linear_rule(config):
    """--auto-scale-lr works for every trainable config: each states the batch its lr is for, and
    mmengine's Runner.scale_lr gives lr x (processes x batch) / base_batch_size."""
    import torch
    from mmengine.logging import MMLogger
    from mmengine.optim import OptimWrapper
    from mmengine.runner import Runner
    cfg = Config.fromfile(osp.join(REPO, config))
    base, batch, lr = cfg.auto_scale_lr.base_batch_size, cfg.train_dataloader.batch_size, cfg.optim_wrapper.optimizer.lr
    for processes in (1, 8):
        runner = Runner.__new__(Runner)  # scale_lr reads the world size, batch and schedulers
        runner._world_size, runner._train_dataloader = processes, cfg.train_dataloader
        runner.logger, runner.param_schedulers = MMLogger.get_instance('test_configs'), cfg.get('param_scheduler')
        wrapper = OptimWrapper(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr))
        runner.scale_lr(wrapper, dict(enable=True, base_batch_size=base))
        assert wrapper.optimizer.param_groups[0]['lr'] == pytest.approx(lr * processes * batch / base)
