"""Evaluate a checkpoint on its config's test split and write the metrics table.

    python tools/test.py configs/deeplabv3_r50.py work_dirs/deeplabv3_r50/iter_40000.pth
    bash tools/dist_test.sh CONFIG CHECKPOINT 8

Prints a markdown table of every metric and writes it to the work dir as
``test_<config>_<checkpoint>.{md,json,csv}``, saying which images the numbers were computed on.
``--out FILE.pkl`` also dumps the raw predictions, as mmdet's and mmseg's ``--out`` do;
``--show-dir DIR`` writes one overlay per image (image | ground truth | prediction) into DIR;
``--tta`` tests the config's ``tta_model`` over its ``tta_pipeline`` (mmseg's SegTTAModel: every
scale and flip of mmseg's Cityscapes base), into ``test_<config>_<checkpoint>_tta.*``.
CHECKPOINT may be an export of tools/deployment/export.py (its directory): onnxruntime runs it
inside the same pipeline and evaluators, into ``test_<config>_<export>_onnxruntime.*``.
"""
import argparse
import os
import os.path as osp
from contextlib import ExitStack

from mmengine.config import DictAction
from mmengine.dist import is_main_process
from mmengine.runner import Runner

from mmcityscapes.apis.model_source import ModelSource
from mmcityscapes.common.errors import UserError, run_tool
from mmcityscapes.common.io import atomic_output, check_writable
from mmcityscapes.common.tables import describe_dataset, test_result_stem, write_metrics
from mmcityscapes.engine.hooks.overlay_hook import OverlayHook
from mmcityscapes.engine.runner.runtime import prepare_runtime
from mmcityscapes.utils.config import load_config, work_dir_of
from mmcityscapes.utils.model import unwrap_model
from mmcityscapes.utils.tasks import model_family, names_its_weights


def parse_args():
    parser = argparse.ArgumentParser(description='Test a segmentation or detection checkpoint')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file, training work dir or export directory '
                        '(tools/deployment/export.py); none for a config whose model names its own (panoptic fusion)')
    parser.add_argument('--work-dir', help='where the log and tables go (default: work_dirs/<config>)')
    parser.add_argument('--show-dir', help='write image | ground truth | prediction overlays here')
    parser.add_argument('--out', help="also dump the raw predictions to this .pkl (mmdet's/mmseg's --out)")
    parser.add_argument('--tta', action='store_true', help="test-time augmentation: the config's tta_model and "
                        'tta_pipeline')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. test_dataloader.batch_size=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if args.out and not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f'--out {args.out}: the file name must end with .pkl')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    evaluate(args)


def use_tta(cfg, config):
    """Test ``cfg.tta_model`` wrapping the model, on ``cfg.tta_pipeline``, as mmseg's/mmdet's ``--tta``."""
    missing = [key for key in ('tta_model', 'tta_pipeline') if key not in cfg]
    if missing:
        raise UserError(f'--tta: {config} defines no {" and no ".join(missing)} (mmdet\'s DetTTAModel cannot '
                        'merge instance masks, so the Mask R-CNN configs define none)')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def evaluate(args):
    for path, what, folder in ((args.work_dir, '--work-dir', True), (args.show_dir, '--show-dir', True),
                               (args.out, '--out', False)):
        if path:
            check_writable(path, what, folder)
    # read once; missing, truncated or corrupt: one line before anything is built
    source = ModelSource(None if args.checkpoint in (None, '-') else args.checkpoint)
    cfg = load_config(args.config, args.cfg_options)
    if source.path is None and not names_its_weights(cfg):
        raise UserError(f'{args.config}: give the CHECKPOINT to test (or a training work dir or an export directory)')
    cfg.launcher = args.launcher
    cfg.work_dir = work_dir_of(cfg, args.config, args.work_dir)
    cfg.model, cfg.load_from = source.model_config(cfg), None  # the runner loads nothing: the source does
    if args.tta:
        source.require_logits('--tta')
        use_tta(cfg, args.config)
    if args.show_dir:
        cfg.custom_hooks = cfg.get('custom_hooks', []) + [dict(type=OverlayHook.__name__, out_dir=args.show_dir)]
    prepare_runtime(cfg, splits=('test',))
    with ExitStack() as outputs:
        if args.out:  # written whole or not at all, by the main process (the one that evaluates)
            evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
            dump = 'DumpResults' if model_family(cfg) == 'semantic' else 'DumpDetResults'
            out_file = outputs.enter_context(atomic_output(args.out)) if is_main_process() else args.out
            cfg.test_evaluator = [*evaluators, dict(type=dump, out_file_path=out_file)]
        runner = Runner.from_cfg(cfg)
        source.load_into(unwrap_model(runner.model))  # DDP, TTA: the checkpoint's model inside
        metrics = runner.test()
    if is_main_process():
        evaluated_on = describe_dataset(runner.test_dataloader.dataset)
        name = source.path and osp.normpath(args.checkpoint)
        title = osp.basename(args.config) + (f' — {osp.basename(name)}' if name else '') + \
            (' (onnxruntime)' if source.exported else '')
        stem = test_result_stem(cfg.work_dir, args.config, name) + ('_onnxruntime' if source.exported else '')
        stem += '_tta' if args.tta else ''
        print(write_metrics(dict(metrics, evaluated_on=evaluated_on), stem, title + (' — TTA' if args.tta else '')))


if __name__ == '__main__':
    run_tool(main)
