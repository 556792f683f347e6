"""mmcityscapes: the pieces mmdet/mmseg lack for Cityscapes.

Importing the package registers nothing and imports neither torch nor OpenMMLab. Configs
register the components with ``custom_imports = dict(imports=['mmcityscapes.components'])``;
the layers and their import rule are in the plugin README.
"""
