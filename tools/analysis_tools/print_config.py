"""Print a config as the tools see it: bases merged, ``--cfg-options`` applied.

    python tools/analysis_tools/print_config.py configs/maskrcnn_stage2.py [--cfg-options k=v ...]
"""
import argparse

from mmengine.config import DictAction

from mmcityscapes.common.errors import run_tool
from mmcityscapes.utils.config import load_config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    args = parser.parse_args()
    print(load_config(args.config, args.cfg_options).pretty_text)


if __name__ == '__main__':
    run_tool(main)
