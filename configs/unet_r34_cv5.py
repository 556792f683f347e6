# unet_r34 5-fold cross-validation, 1x4 images, 10 epochs a fold, 512x1024 crops, Cityscapes fine.
# unet_r34 under 5-fold cross-validation of the train split (the U-Net CV recipe's protocol): each fold in
# work_dirs/unet_r34_cv5/fold_<k>/, mean ± std in cv_results.md, then a final model on all of
# train evaluated on val. Folds: splits/cv5/ from tools/dataset_converters/cityscapes.py.
_base_ = './unet_r34.py'
runner_type = 'CrossValidationRunner'
# parallel: under dist_train.sh each process trains whole folds side by side (batch 4 each, the recipe's);
# False: every fold is one DDP run over all processes (N x 4 images a step)
cv = dict(folds=5, split_dir='splits/cv5', final_model=True, parallel=True)
