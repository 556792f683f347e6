"""mmcityscapes plugin: the pieces mmdet/mmseg lack for Cityscapes.

Importing the package registers nothing and imports neither torch nor OpenMMLab, so the light
modules (``evaluation.cityscapes_semantic``, ``evaluation.cityscapes_instance``,
``evaluation.result_files``, ``utils.io``, ``utils.labels``, ``utils.report``) start fast.
Configs register the components with
``custom_imports = dict(imports=['projects.mmcityscapes.components'])``.
"""
