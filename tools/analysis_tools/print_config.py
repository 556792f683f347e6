"""Print a config as the tools see it: bases merged, ``--cfg-options`` applied.

    python tools/analysis_tools/print_config.py configs/maskrcnn_stage2.py [--cfg-options k=v ...]
"""
import argparse
import sys

from mmengine.config import DictAction

from projects.mmcityscapes.utils.config import ConfigError, load_config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    args = parser.parse_args()
    try:
        print(load_config(args.config, args.cfg_options).pretty_text)
    except ConfigError as e:
        sys.exit(f'error: {e}')


if __name__ == '__main__':
    main()
