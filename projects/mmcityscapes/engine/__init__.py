"""What drives training, as mmdet's ``mmdet/engine``: hooks, loops and runners, runtime
preparation, process groups, work-dir locks, dataloader workers and the Optuna search."""
