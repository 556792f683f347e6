"""Make a training checkpoint publishable, as mmdet's publish_model.py does: keep only the weights
and meta (no optimizer, scheduler or message hub) and end the file name with the first 8 hex
digits of the file's sha256.

    python tools/model_converters/publish_model.py work_dirs/unet_r34/best_mIoU_epoch_10.pth unet_r34.pth
    # -> unet_r34-<sha256[:8]>.pth
"""
import argparse
import hashlib
import io
import os.path as osp

import torch

from mmcityscapes.common.errors import run_tool
from mmcityscapes.common.io import atomic_output, check_writable
from mmcityscapes.utils.checkpoint import Checkpoint


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('in_file', help='training checkpoint')
    parser.add_argument('out_file', help='published name, before its sha256 suffix')
    args = parser.parse_args()
    check_writable(args.out_file, 'out_file', folder=False)
    checkpoint = Checkpoint.read(args.in_file)
    state_dict, meta = checkpoint.state, checkpoint.meta
    buffer = io.BytesIO()
    torch.save(dict(meta=meta, state_dict=state_dict), buffer)
    content = buffer.getvalue()
    stem = args.out_file[:-4] if args.out_file.endswith('.pth') else args.out_file
    published = f'{stem}-{hashlib.sha256(content).hexdigest()[:8]}.pth'
    if osp.isfile(published):  # the name holds the hash: the same content
        print(f'{published} is already published')
        return
    with atomic_output(published) as tmp, open(tmp, 'wb') as f:
        f.write(content)
    print(f'{published}: {len(state_dict)} tensors, {len(content) / 2 ** 20:.1f} MiB')


if __name__ == '__main__':
    run_tool(main)
