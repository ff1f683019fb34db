"""Models by name: the torch-free registry of names and specs, and the networks behind them.

- ``specs``: every model name, the data it reads, what trains it and its authors'
  training settings; no torch, so validating a config never loads it;
- ``trainers``: what trains a model and scores with it (svp.training's torch loop, or
  fastText), and the ``training`` settings each takes; their code is loaded on first use;
- ``networks``: the torch factories (``create_model``): pre-activation ResNets, ResNets
  with a CIFAR stem, plain CNNs; ``resnet9`` and ``vdcnn`` hold the larger families;
- ``fasttext_classifier``: fastText, trained and scored outside torch (the fastText trainer);
- ``torchvision_models``: any torchvision.models classifier by name (``torchvision/resnet50``),
  with torchvision's weights by name, checked against the input it meets;
- ``pretrained``: starting a model from a local checkpoint's weights, the head replaced
  when the classes differ.

Importing this package loads only the specs.
"""

from svp.models.specs import MODEL_SPECS, ModelSpec, list_models, model_spec, training_defaults

__all__ = ["MODEL_SPECS", "ModelSpec", "list_models", "model_spec", "training_defaults"]
