"""Run the staged Mask R-CNN fine-tuning end to end and print the seed's performance table.

    python tools/run_pipeline.py                      # configs/maskrcnn_stage{0,1,2,3}.py, 1 process
    python tools/run_pipeline.py --gpus 8             # every stage through tools/dist_train.sh
    python tools/run_pipeline.py --configs S0 S1 S2 S3 --work-dir work_dirs/pipeline_x

Stage k trains with tools/train.py into ``<work-dir>/<config name>/`` and is tested on its
best checkpoint (by ``save_best``; else the last), which is wired into the next stage: stage 1
loads the stage-0 backbone (CoarsePretrainHook), stages 2 and 3 start from the previous
stage's weights (``load_from``). A stage with a result is skipped and an interrupted one resumes,
so re-running the command continues where it stopped. k-means anchors and the Optuna search
that stage 2 inherits are separate steps (tools/analysis_tools/kmeans_anchors.py,
tools/tune.py): they write configs/_base_/tuned/.

Ends with one row per stage: COCO bbox and segm AP, AP50, AP75, AP small/medium/large, the
Cityscapes mask AP/AP50 where the config evaluates it, and the images it was computed on;
written to ``<work-dir>/pipeline_results.{md,json}``.
"""
import argparse
import glob
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
from projects.mmcityscapes.utils.io import read_json, write_json, write_text  # noqa: E402

STAGES = [f'configs/maskrcnn_stage{k}.py' for k in range(4)]
# how each stage receives the previous stage's best checkpoint
WIRING = [None, 'custom_hooks.0.checkpoint', 'load_from', 'load_from']
COLUMNS = [('bbox AP', 'coco/bbox_mAP'), ('bbox AP50', 'coco/bbox_mAP_50'), ('bbox AP75', 'coco/bbox_mAP_75'),
           ('segm AP', 'coco/segm_mAP'), ('segm AP50', 'coco/segm_mAP_50'), ('segm AP75', 'coco/segm_mAP_75'),
           ('segm APs', 'coco/segm_mAP_s'), ('segm APm', 'coco/segm_mAP_m'), ('segm APl', 'coco/segm_mAP_l'),
           ('Cityscapes AP', 'cityscapes/mAP'), ('Cityscapes AP50', 'cityscapes/AP50')]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--configs', nargs=4, default=STAGES, metavar=('S0', 'S1', 'S2', 'S3'))
    parser.add_argument('--work-dir', default='work_dirs/pipeline')
    parser.add_argument('--gpus', type=int, default=1, help='processes per stage (>1: dist_train.sh)')
    parser.add_argument('--cfg-options', nargs='+', default=[], help='passed to every stage')
    return parser.parse_args()


def run(cmd):
    print('$', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def best_checkpoint(work_dir):
    best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')), key=osp.getmtime)
    if best:
        return best[-1]
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def run_stage(config, work_dir, options, gpus):
    """Train (or resume, or skip) one stage and test its best checkpoint."""
    result_file = osp.join(work_dir, 'pipeline_result.json')
    if osp.isfile(result_file):
        print(f'{config}: done, skipped')
        return read_json(result_file)
    py = sys.executable
    resume = ['--resume'] if osp.isfile(osp.join(work_dir, 'last_checkpoint')) else []
    opts = ['--cfg-options', *options] if options else []
    if gpus > 1:
        run(['bash', 'tools/dist_train.sh', config, str(gpus), '--work-dir', work_dir, *resume, *opts])
    else:
        run([py, 'tools/train.py', config, '--work-dir', work_dir, *resume, *opts])
    checkpoint = best_checkpoint(work_dir)
    if gpus > 1:
        run(['bash', 'tools/dist_test.sh', config, checkpoint, str(gpus), '--work-dir', work_dir, *opts])
    else:
        run([py, 'tools/test.py', config, checkpoint, '--work-dir', work_dir, *opts])
    stem = osp.splitext(checkpoint)[0]
    metrics = read_json(f'{osp.dirname(stem)}/test_{osp.basename(stem)}.json')
    result = dict(config=config, checkpoint=checkpoint, metrics=metrics)
    write_json(result, result_file, indent=2)
    return result


def table(results):
    header = ['stage', 'config', *[name for name, _ in COLUMNS], 'evaluated on']
    lines = ['| ' + ' | '.join(header) + ' |', '| --- | --- |' + ' ---: |' * len(COLUMNS) + ' --- |']
    for k, result in enumerate(results):
        metrics = result['metrics']
        if k == 0:  # the coarse-pretrained segmentation backbone
            cells = [f'val mIoU {metrics.get("mIoU", float("nan")):.2f} (segmentation)'] + [''] * (len(COLUMNS) - 1)
        else:
            cells = [f'{100 * metrics[key]:.1f}' if key in metrics else '–' for _, key in COLUMNS]
        lines.append(f'| {k} | {osp.basename(result["config"])} | ' + ' | '.join(cells) +
                     f' | {metrics.get("evaluated_on", "")} |')
    return '\n'.join(lines) + '\n'


def main():
    args = parse_args()
    results, previous = [], None
    for k, config in enumerate(args.configs):
        work_dir = osp.join(args.work_dir, osp.splitext(osp.basename(config))[0])
        options = list(args.cfg_options)
        if WIRING[k]:
            options.append(f'{WIRING[k]}={previous}')
        result = run_stage(config, work_dir, options, args.gpus)
        results.append(result)
        previous = result['checkpoint']
    text = table(results)
    write_text(text, osp.join(args.work_dir, 'pipeline_results.md'))
    write_json(results, osp.join(args.work_dir, 'pipeline_results.json'), indent=2)
    print('\n' + text)


if __name__ == '__main__':
    os.chdir(REPO)
    main()
