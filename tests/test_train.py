"""tools/train.py on the generated dataset: logs, work dirs, resume, bad configs and inputs, dist_train.sh."""
import glob
import json
import os
import os.path as osp
import re
import shutil
import signal
import socket
import subprocess
import time
import zipfile

import pytest

from conftest import INSTANCE, PY, REPO, SEMANTIC, alive, children, coco_shaped, free_port, run_tool, short_run

pytestmark = pytest.mark.slow  # every test here runs a tool on a model


def test_tensorboard_logs_what_scalars_json_logs(semantic_run):
    """--tensorboard: the TensorBoard event file holds every loss and validation value of the run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    (events,) = glob.glob(str(semantic_run / '*' / 'vis_data' / 'events.out.tfevents.*'))
    accumulator = EventAccumulator(events)
    accumulator.Reload()
    (scalars,) = glob.glob(str(semantic_run / '*' / 'vis_data' / 'scalars.json'))
    logged = [json.loads(line) for line in open(scalars)]
    losses = [entry['loss'] for entry in logged if 'loss' in entry]
    assert len(losses) == 4
    assert [round(e.value, 4) for e in accumulator.Scalars('loss')] == [round(v, 4) for v in losses]
    assert accumulator.Scalars('mIoU')[-1].value == pytest.approx(logged[-1]['mIoU'], abs=1e-4)


def test_dataloader_workers_die_with_a_killed_training(mini_env, tmp_path):
    """kill -9 of tools/train.py alone (not its group) takes its dataloader workers with it."""
    proc = subprocess.Popen([PY, 'tools/train.py', SEMANTIC, '--work-dir', str(tmp_path), *short_run(400)], cwd=REPO,
                            env=mini_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while not any('Iter(train)' in open(log).read() for log in glob.glob(f'{tmp_path}/*/*.log')) and \
                time.time() < deadline:
            time.sleep(0.5)
        workers = children(proc.pid)
        assert len(workers) >= 2  # the config's two dataloader workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 10
        while any(alive(w) for w in workers) and time.time() < deadline:
            time.sleep(0.2)
        assert time.time() < deadline, 'dataloader workers outlived the killed training'
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_one_training_per_work_dir(mini_env, tmp_path):
    """A second training into a busy work dir stops with one line naming the first; once the
    first is killed (-9), the work dir is free again."""
    args = [PY, 'tools/train.py', SEMANTIC, '--work-dir', str(tmp_path), *short_run(400)]
    first = subprocess.Popen(args, cwd=REPO, env=mini_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    deadline = time.time() + 300
    while not glob.glob(f'{tmp_path}/*/*.log') and time.time() < deadline:
        time.sleep(0.2)
    second = run_tool(*args[1:], env=mini_env, check=False)
    assert second.returncode == 2 and second.stderr.strip().splitlines()[-1] == \
        f'error: {tmp_path} is in use by process {first.pid} on {socket.gethostname()}: wait for it, stop it, ' \
        'or pass another --work-dir'
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    third = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(tmp_path), *short_run(1), env=mini_env)
    assert third.returncode == 0 and osp.isfile(tmp_path / 'iter_1.pth')


def test_resume_skips_a_truncated_latest_checkpoint(mini_env, tmp_path):
    """--resume onto a truncated latest checkpoint resumes from the previous one, saying so;
    --resume with no checkpoint at all says it trains from scratch."""
    args = ['tools/train.py', SEMANTIC, '--work-dir', str(tmp_path), *short_run(4, interval=2)]
    run_tool(*args, env=mini_env)
    latest = tmp_path / 'iter_4.pth'
    latest.write_bytes(latest.read_bytes()[:50000])
    proc = run_tool(*args, '--resume', env=mini_env)
    assert f'{latest} is missing, truncated or corrupt: resuming from an earlier checkpoint' in proc.stderr
    assert 'resumed epoch: 0, iter: 2' in open(sorted(glob.glob(f'{tmp_path}/*/*.log'))[-1]).read()
    assert zipfile.is_zipfile(latest)  # trained again
    proc = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(tmp_path / 'new'), '--resume', *short_run(1),
                    env=mini_env)
    assert f'--resume: no checkpoint in {tmp_path / "new"}, training from scratch' in proc.stderr


def test_default_work_dir_is_named_after_the_config(mini_env, tmp_path):
    run_tool(osp.join(REPO, 'tools/train.py'), osp.join(REPO, SEMANTIC), *short_run(1), cwd=tmp_path, env=mini_env)
    assert osp.isfile(tmp_path / 'work_dirs' / 'deeplabv3_r18_mini' / 'iter_1.pth')


@pytest.mark.parametrize('root', ['/data/cityscapes', "/data/it's here/cityscapes/"])
def test_dataset_root_without_slash_or_with_a_quote(root, monkeypatch):
    """$CITYSCAPES_ROOT is a path, however spelled: every config joins it, none pastes it into code."""
    from mmengine.config import Config
    monkeypatch.setenv('CITYSCAPES_ROOT', root)
    for config in ('configs/maskrcnn_stage2.py', 'configs/maskrcnn_stage3_valft.py', 'configs/unet_r34.py',
                   'configs/deeplabv3_r50.py', SEMANTIC, INSTANCE):
        cfg = Config.fromfile(osp.join(REPO, config))
        assert cfg.val_dataloader.dataset.data_root == root, config
        evaluators = cfg.val_evaluator if isinstance(cfg.val_evaluator, list) else [cfg.val_evaluator]
        for ann_file in (e.ann_file for e in evaluators if 'ann_file' in e):
            expected = osp.join(root, 'annotations', 'instancesonly_filtered_gtFine_val')
            assert osp.normpath(ann_file).startswith(osp.normpath(expected)), config


def test_wrong_config_key_names_the_key(mini_env, tmp_path):
    proc = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(tmp_path), '--cfg-options',
                    'model.backbone.deptth=18', env=mini_env, check=False)
    assert proc.returncode != 0 and 'deptth' in proc.stderr


def test_config_errors_name_the_file(mini_env, tmp_path):
    """A syntax error names the config file and line; an option key that matches nothing warns
    with the closest existing key."""
    broken = tmp_path / 'broken.py'
    broken.write_text(f"_base_ = '{osp.join(REPO, SEMANTIC)}'\nmodel = dict(\n")
    proc = run_tool('tools/train.py', str(broken), '--work-dir', str(tmp_path / 'w'), env=mini_env, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(f'error: {broken}:2: ')
    proc = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(tmp_path / 'w'), *short_run(1)[:-1],
                    'default_hooks.loger.interval=1', env=mini_env, check=False)
    assert (f'warning: --cfg-options default_hooks.loger.interval matches no key of {SEMANTIC}, it is added; '
            'did you mean default_hooks.logger.interval?') in proc.stderr


def test_missing_dataset_or_misspelled_hook_argument_stops_before_training(mini_env, tmp_path):
    """No dataset: one line naming the first missing file, for both families. A hook argument
    mmengine would only reject at the first checkpoint: one line, before any iteration."""
    absent = tmp_path / 'no_cityscapes'
    for config, missing in ((SEMANTIC, 'folder leftImg8bit/train'),
                            (INSTANCE, 'annotation file annotations/instancesonly_filtered_gtFine_train.json')):
        proc = run_tool('tools/train.py', config, '--work-dir', str(tmp_path / 'w'),
                        env=dict(mini_env, CITYSCAPES_ROOT=f'{absent}/'), check=False)
        kind, path = missing.rsplit(' ', 1)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
            f"error: train_dataloader: missing {kind} {absent}/{path} (no Cityscapes at '{absent}/': "
            'set CITYSCAPES_ROOT or see data/README.md)'), proc.stderr[-2000:]
    proc = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(tmp_path / 'w'), *short_run(2),
                    'default_hooks.checkpoint.intervall=1', env=mini_env, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        "error: default_hooks.checkpoint: CheckpointHook takes no argument 'intervall'; did you mean interval?")
    assert not glob.glob(str(tmp_path / 'w' / '*.pth')) and 'Iter(train)' not in proc.stdout + proc.stderr


def test_dist_train_two_processes_on_cpu(mini_env, tmp_path):
    env = dict(mini_env, PORT=str(free_port()), PYTHON=PY)
    proc = subprocess.run(['bash', 'tools/dist_train.sh', SEMANTIC, '2', '--work-dir', str(tmp_path),
                           *short_run(3)], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = open(glob.glob(f'{tmp_path}/*/*.log')[0]).read()
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert osp.isfile(tmp_path / 'iter_3.pth')


def test_checkpoints_need_and_get_the_allow_list(semantic_run):
    load = 'import torch; c = torch.load({!r}); print(type(c["message_hub"]["log_scalars"]["train/loss"]).__name__)'
    ckpt = str(semantic_run / 'iter_4.pth')
    bare = subprocess.run([PY, '-c', load.format(ckpt)], capture_output=True, text=True)
    assert bare.returncode != 0 and 'weights_only' in bare.stderr  # what mmengine alone hits
    fixed = subprocess.run([PY, '-c', 'import mmcityscapes.components; ' + load.format(ckpt)], cwd=REPO,
                           capture_output=True, text=True)
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.strip() == 'HistoryBuffer'


def test_kill_and_resume(mini_env, tmp_path):
    args = [PY, 'tools/train.py', SEMANTIC, '--work-dir', str(tmp_path), *short_run(12, interval=2)]
    proc = subprocess.Popen(args, cwd=REPO, env=mini_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while not osp.exists(tmp_path / 'last_checkpoint') and time.time() < deadline:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    latest = open(tmp_path / 'last_checkpoint').read().strip()
    done = int(re.search(r'iter_(\d+)\.pth', latest).group(1))
    assert done < 12, 'the run was killed before it finished'
    run_tool('tools/train.py', SEMANTIC, '--work-dir', str(tmp_path), '--resume', *short_run(12, interval=2),
             env=mini_env)
    log = open(sorted(glob.glob(f'{tmp_path}/*/*.log'))[-1]).read()
    assert f'resumed epoch: 0, iter: {done}' in log
    assert f'Iter(train) [{done + 1:>2}/12]' in log and f'Iter(train) [{done:>2}/12]' not in log
    assert osp.isfile(tmp_path / 'iter_12.pth')


def test_fine_tuning_from_a_coco_checkpoint_names_the_new_heads(instance_run, mini_env, tmp_path):
    """Training from a COCO-shaped checkpoint (the usual fine-tuning) loads what fits and says in
    one line which tensors keep their initialisation."""
    checkpoint = coco_shaped(instance_run, tmp_path / 'coco_shaped.pth')
    proc = run_tool('tools/train.py', INSTANCE, '--work-dir', str(tmp_path / 'ft'), *short_run(1),
                    f'load_from={checkpoint}', env=mini_env)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if 'LoadReportHook: ' in line]
    assert len(lines) == 1 and lines[0].endswith(
        'LoadReportHook: 6 tensors keep their initialisation (6 had another shape): roi_head.bbox_head.fc_cls, '
        'roi_head.bbox_head.fc_reg, roi_head.mask_head.conv_logits'), lines
    resumed = run_tool('tools/train.py', INSTANCE, '--work-dir', str(tmp_path / 'ft'), *short_run(1), '--resume',
                       env=mini_env)  # its own checkpoint fits: nothing to say
    assert 'LoadReportHook: ' not in resumed.stdout + resumed.stderr


def test_image_that_does_not_decode_stops_training_in_one_line(mini_root, tmp_path):
    """Images that are complete PNGs on disk (the pre-flight check passes) but do not decode: the
    first batch that reads one ends training with one line naming the file, not a worker's
    traceback."""
    root = tmp_path / 'cityscapes'
    shutil.copytree(mini_root, root, symlinks=True)
    for image in glob.glob(f'{root}/leftImg8bit/train/*/*.png'):
        data = bytearray(open(image, 'rb').read())
        data[100:-100] = bytes(len(data) - 200)  # the pixel data zeroed, signature and IEND kept
        open(image, 'wb').write(data)
    env = dict(os.environ, CITYSCAPES_ROOT=f'{root}/')
    proc = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(tmp_path / 'work'), *short_run(1),
                    'train_dataloader.num_workers=1', env=env, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error: ')]  # libpng adds its own
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr and len(errors) == 1, proc.stderr[-3000:]
    error = errors[0]
    assert re.fullmatch(rf'error: cannot decode image {root}/leftImg8bit/train/\S+_leftImg8bit\.png \(corrupt\): '
                        'replace it, then continue with --resume', error), error
