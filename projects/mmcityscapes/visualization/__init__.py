from mmcityscapes.visualization.overlay import overlay_panels, quiet_visualizer, write_overlay

__all__ = ['overlay_panels', 'quiet_visualizer', 'write_overlay']
