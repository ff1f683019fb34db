"""Models by name: the torch-free registry of names and specs, and the networks behind them.

- ``specs``: every model name, the data it reads, which trainer (``svp.trainers``)
  trains it and its authors' training settings; no torch, so validating a config never
  loads it;
- ``networks``: the torch factories (``create_model``): pre-activation ResNets, ResNets
  with a CIFAR stem, plain CNNs; ``resnet9`` and ``vdcnn`` hold the larger families;
- ``torchvision_models``: any torchvision.models classifier by name (``torchvision/resnet50``),
  with torchvision's weights by name, checked against the input it meets;
- ``torchvision_names``: which names torchvision has, their weights and the least input
  size torchvision documents, asked without importing torch until a question needs it;
- ``pretrained``: starting a model from a local checkpoint's weights, the head replaced
  when the classes differ.

A model knows no data format and no training loop: the text alphabet it is sized by is
``svp.schema``'s, and what trains it lives in ``svp.trainers``.

Importing this package loads only the specs.
"""

from svp.models.specs import MODEL_SPECS, ModelSpec, list_models, model_spec, training_defaults

__all__ = ["MODEL_SPECS", "ModelSpec", "list_models", "model_spec", "training_defaults"]
