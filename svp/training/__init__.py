"""Training and evaluating torch models: what the torch trainer (``svp.trainers.torch_trainer``) runs.

- ``loop``: the data held on the device, batches, augmentation, SGD with a piecewise
  learning rate, evaluation and prediction;
- ``checkpoint``: the resumable training state, saved after every epoch;
- ``forgetting``: forgetting events (Toneva et al., 2019) counted per example in training;
- ``disk_data``: images read from disk by DataLoader workers as the loop asks for batches,
  for data sets too large to hold (``svp.data.disk``);
- ``per_example``: GraNd gradient norms and penultimate-layer embeddings of a trained model;
- ``gpus``: which GPU a job gets (no torch: the Snakefile asks it how many there are);
- ``distributed``: one run on several GPUs, a process each (DistributedDataParallel started
  by torchrun): which share of each batch a rank trains on, the launcher, the process group.

Nothing is imported here, so ``svp.training.gpus`` stays light.
"""
