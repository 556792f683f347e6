"""What the tools do with a diverging training, a changed config on --resume, Ctrl-C, a full disk,
outputs that cannot be written, config values the constructors refuse and mixed precision on the
CPU: one line each, nothing half-written, no record of a value the run did not use."""
import glob
import json
import os
import os.path as osp
import re
import signal
import subprocess
import time

import pytest
import torch

from mmcityscapes.utils.checkpoint import Checkpoint

from conftest import INSTANCE, PY, REPO, SEMANTIC, run_tool, short_run

pytestmark = pytest.mark.slow  # every test here runs a tool on a model


def last_line(proc):
    return proc.stderr.strip().splitlines()[-1]


def logged(work_dir, key):
    """{step: value} of ``key`` in every scalars.json of ``work_dir``."""
    values = {}
    for path in sorted(glob.glob(f'{work_dir}/*/vis_data/scalars.json')):
        values.update({r['step']: r[key] for r in map(json.loads, open(path)) if key in r})
    return values


def test_a_diverging_training_stops_and_no_tool_takes_a_non_finite_checkpoint(semantic_run, mini_env, mini_root,
                                                                              tmp_path):
    """lr 1e6: training stops with one line at the first non-finite loss (naming the iteration and
    the loss terms) or the first checkpoint of non-finite weights (naming one), exit status 2; the
    checkpoints left are finite and last_checkpoint names the newest. A checkpoint holding a NaN is
    refused by test.py, infer.py and export.py in one line."""
    work_dir = tmp_path / 'diverged'
    proc = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(work_dir), *short_run(30, interval=1),
                    'optim_wrapper.optimizer.lr=1e6', 'default_hooks.checkpoint.max_keep_ckpts=2', env=mini_env,
                    check=False)
    stopped = re.fullmatch(r'error: (training stopped at iteration (\d+): the loss is not finite \(loss \S+, '
                           r'decode\.loss_ce \S+, .*\)|not saving a checkpoint at iteration (\d+): \d+ of its 178 '
                           r'tensors hold NaN or infinite values \(e\.g\. \S+\)); the last checkpoint, (\S+), '
                           r'is kept\b.*', last_line(proc))
    assert proc.returncode == 2 and stopped and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    iteration = int(stopped.group(2) or stopped.group(3))
    assert 1 < iteration < 30 and stopped.group(4) == str(work_dir / f'iter_{iteration - 1}.pth')
    assert open(work_dir / 'last_checkpoint').read().strip().endswith(f'iter_{iteration - 1}.pth')
    saved = glob.glob(f'{work_dir}/iter_*.pth')
    assert saved and all(Checkpoint.read(path) for path in saved)  # all finite
    assert not osp.exists(work_dir / f'iter_{iteration}.pth')

    content = torch.load(semantic_run / 'iter_4.pth', map_location='cpu', weights_only=False)
    content['state_dict']['decode_head.conv_seg.weight'][0, 0] = float('nan')
    torch.save(content, tmp_path / 'nan.pth')
    for tool, extra in (('tools/test.py', ['--work-dir', str(tmp_path / 'test')]),
                        ('tools/infer.py', [str(mini_root / 'leftImg8bit' / 'val'), '--out', str(tmp_path / 'infer')]),
                        ('tools/deployment/export.py', ['--out', str(tmp_path / 'export')])):
        proc = run_tool(tool, SEMANTIC, str(tmp_path / 'nan.pth'), *extra, env=mini_env, check=False)
        assert proc.returncode == 2 and last_line(proc) == (
            f'error: {tmp_path}/nan.pth holds NaN or infinite values in 1 of its {len(content["state_dict"])} tensors '
            '(e.g. decode_head.conv_seg.weight): its training diverged; use an earlier checkpoint'), proc.stderr[-2000:]
    assert not any(osp.exists(tmp_path / out) for out in ('infer', 'export')) and \
        not glob.glob(str(tmp_path / 'test' / 'test_*'))


def test_resume_with_a_changed_config_is_refused_or_applied(mini_env, tmp_path):
    """--resume with another lr and length: one line naming the keys, nothing written; with
    --allow-changes the new values are applied: the lr logged after resuming is the one a run of the
    new config logs at that iteration, and the work dir's records claim the new values."""
    work_dir, reference = tmp_path / 'resumed', tmp_path / 'reference'
    run_tool('tools/train.py', SEMANTIC, '--work-dir', str(work_dir), *short_run(2), env=mini_env)
    changed = [*short_run(4, interval=4), 'optim_wrapper.optimizer.lr=0.002']
    logs = glob.glob(f'{work_dir}/*/*.log')
    proc = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(work_dir), '--resume', *changed, env=mini_env,
                    check=False)
    assert proc.returncode == 2 and last_line(proc) == (
        f'error: --resume: the config differs from the one {work_dir}/iter_2.pth was trained with '
        "(default_hooks.checkpoint.interval 2 -> 4, optim_wrapper.optimizer.lr 0.001 -> 0.002, train_cfg.max_iters "
        "2 -> 4 and 1 more): add --allow-changes to continue with the new values, or train into another --work-dir")
    assert glob.glob(f'{work_dir}/*/*.log') == logs  # no run started

    proc = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(work_dir), '--resume', '--allow-changes', *changed,
                    env=mini_env)
    assert 'ApplyConfigChangesHook: resumed at iteration 2 with 4 changed config values' in proc.stdout
    run_tool('tools/train.py', SEMANTIC, '--work-dir', str(reference), *changed, env=mini_env)
    resumed, fresh = logged(work_dir, 'lr'), logged(reference, 'lr')
    assert resumed[1] == pytest.approx(fresh[1] / 2)  # before: the old lr
    assert resumed[3] == pytest.approx(fresh[3], rel=1e-9) and resumed[4] == pytest.approx(fresh[4], rel=1e-9)
    meta = torch.load(work_dir / 'iter_4.pth', map_location='cpu', weights_only=False)
    assert "lr=0.002" in meta['meta']['cfg'] and meta['optimizer']['param_groups'][0]['initial_lr'] == 0.002


def start_training(args, env, work_dir, pattern=r'Iter\(train\)\s*\[\s*2/', timeout=300):
    """tools/train.py in its own process group (a terminal's foreground job), once ``pattern`` is logged."""
    proc = subprocess.Popen([PY, 'tools/train.py', *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if any(re.search(pattern, open(log).read()) for log in glob.glob(f'{work_dir}/*/*.log')):
            return proc
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(proc.communicate()[0][-3000:])


def test_ctrl_c_saves_a_checkpoint_and_a_second_one_ends_at_once(mini_env, tmp_path):
    """Ctrl-C (SIGINT to the process group, dataloader workers included) stops training after the
    iteration with a checkpoint, exit status 75, and --resume continues there; a second Ctrl-C
    ends the process at once."""
    args = [SEMANTIC, '--work-dir', str(tmp_path), *short_run(200, interval=200)]
    proc = start_training(args, mini_env, tmp_path)
    os.killpg(proc.pid, signal.SIGINT)
    output = proc.communicate(timeout=120)[0]
    stopped = re.search(r'PreemptionHook: stopped by SIGINT after iteration (\d+) \(saved (\S+)\)', output)
    assert proc.returncode == 75 and stopped and 'KeyboardInterrupt' not in output, output[-3000:]
    assert stopped.group(2) == str(tmp_path / f'iter_{stopped.group(1)}.pth') and Checkpoint.read(stopped.group(2))
    resumed = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(tmp_path), '--resume', '--allow-changes',
                       *short_run(int(stopped.group(1)) + 1, interval=200), env=mini_env)  # one more iteration
    assert f'resumed epoch: 0, iter: {stopped.group(1)}' in open(sorted(glob.glob(f'{tmp_path}/*/*.log'))[-1]).read()

    proc = start_training([SEMANTIC, '--work-dir', str(tmp_path / 'twice'), *short_run(200, interval=200)], mini_env,
                          tmp_path / 'twice')
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.3)  # the first is taken (Python runs its handler between two operators), not the stop
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGINT and resumed.returncode == 0


def test_a_full_disk_leaves_no_truncated_checkpoint(mini_env, tmp_path):
    """The work dir on a filesystem with room for one checkpoint: the second stops training with one
    line (file, free space), no file has a checkpoint's name without being one, and last_checkpoint
    names the first, which loads."""
    mount = tmp_path / 'small'
    mount.mkdir()
    work_dir = mount / 'work'
    train = [PY, 'tools/train.py', SEMANTIC, '--work-dir', str(work_dir), *short_run(3, interval=1)]
    # room for one checkpoint (168 MB); the work dir is copied out before the mount goes away
    script = (f'mount -t tmpfs -o size=220m none {mount} && '
              f'{{ "$@"; status=$?; cp -r {work_dir} {tmp_path}/kept; exit $status; }}')
    unshare = ['unshare', '--mount', '--propagation', 'private'] + ([] if os.getuid() == 0 else
                                                                  ['--user', '--map-root-user'])
    proc = subprocess.run([*unshare, 'sh', '-c', script, 'sh', *train],
                          cwd=REPO, env=mini_env, capture_output=True, text=True, timeout=600)
    if 'mount:' in proc.stderr or 'unshare:' in proc.stderr:
        pytest.skip(f'no private tmpfs here: {proc.stderr.strip().splitlines()[0]}')
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert re.fullmatch(rf'error: no space left on the device to write {work_dir}/iter_2\.pth \([\d.]+ MiB free in '
                        rf'{work_dir}\): free some space, then run again', last_line(proc)), proc.stderr[-2000:]
    kept = tmp_path / 'kept'
    assert sorted(os.listdir(kept)) == sorted(['.lock', 'deeplabv3_r18_mini.py', 'iter_1.pth', 'last_checkpoint',
                                               *[d for d in os.listdir(kept) if d[:8].isdigit()]])
    assert open(kept / 'last_checkpoint').read().strip().endswith('iter_1.pth') and Checkpoint.read(kept / 'iter_1.pth')


def test_bad_outputs_and_config_values_stop_before_anything_is_built(mini_env, semantic_run, mini_root, tmp_path):
    """An --out or --work-dir that names a file, or lies under one, and config values a constructor
    rejects (a batch size of 0, a misspelt argument, an unknown type): one line naming the path or
    the key (with the closest valid one), before anything is loaded or the work dir is made."""
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    checkpoint, images = str(semantic_run / 'iter_4.pth'), str(mini_root / 'leftImg8bit' / 'val')
    for tool, args, expected in (
            ('tools/infer.py', [checkpoint, images, '--out', str(blocker)], f'--out {blocker} is a file, not a folder'),
            ('tools/train.py', ['--work-dir', f'{blocker}/work'], f'--work-dir {blocker}/work: {blocker} is a file, '
                                                                   'not a folder'),
            ('tools/test.py', [checkpoint, '--out', f'{blocker}/p.pkl'], f'--out {blocker}/p.pkl: {blocker} is a '
                                                                         'file, not a folder'),
            ('tools/deployment/export.py', [checkpoint, '--out', str(blocker)], f'--out {blocker} is a file, not a '
                                                                                'folder')):
        proc = run_tool(tool, SEMANTIC, *args, env=mini_env, check=False)
        assert proc.returncode == 2 and last_line(proc) == f'error: {expected}', (tool, proc.stderr[-2000:])
    work_dir = tmp_path / 'work'
    for option, expected in (
            ('train_dataloader.batch_size=0', 'train_dataloader.batch_size=0: must be a whole number of at least 1'),
            ('model.backbone.depht=18', "model.backbone.depht: ResNet takes no argument 'depht'; did you mean "
                                        'model.backbone.depth?'),
            ('model.decode_head.type=ASPPHeed', "model.decode_head.type: 'ASPPHeed' is no type of the mmseg::model "
                                                'registry; did you mean ASPPHead?')):
        proc = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(work_dir), '--cfg-options', option, env=mini_env,
                        check=False)
        assert proc.returncode == 2 and last_line(proc) == f'error: {expected}', proc.stderr[-2000:]
        assert 'Traceback' not in proc.stderr and not osp.exists(work_dir)


@pytest.mark.parametrize('config', [SEMANTIC, INSTANCE])
def test_amp_trains_on_the_cpu(config, mini_env, tmp_path):
    """--amp on a CPU-only machine: bfloat16 autocast through PortableAmpOptimWrapper (mmengine's
    AmpOptimWrapper asserts a GPU), the plugin's float32 casts in Mask R-CNN; finite losses."""
    run_tool('tools/train.py', config, '--work-dir', str(tmp_path), '--amp', *short_run(2), env=mini_env)
    assert "type='PortableAmpOptimWrapper'" in open(glob.glob(f'{tmp_path}/*.py')[0]).read()
    losses = logged(tmp_path, 'loss')
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(v)) for v in losses.values())
