from .overlay import OverlayHook, overlay_panels, quiet_visualizer, write_overlay

__all__ = ['OverlayHook', 'overlay_panels', 'quiet_visualizer', 'write_overlay']
