"""Per-example quantities of a trained torch model, beyond its outputs: the selection
methods' inputs (``svp.selection.methods``).

- ``gradient_norms``: GraNd (Paul et al., 2021), the L2 norm of the gradient of each
  example's cross-entropy loss with respect to all the model's parameters;
- ``penultimate_embeddings``: what the model's last ``nn.Linear`` reads (the
  penultimate-layer features), the space k-center greedy covers.

Both run on un-augmented inputs, in float32 (no autocast), with the model in eval mode
(batch norm uses its running statistics, so each example's value is its own, not its
batch's), in chunks so that memory stays bounded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from svp.errors import StageInputError
from svp.scratch import scratch_array
from svp.training.loop import CHUNK_VALUES, ImageData, TextData, on_cpu_in_chunks


def gradient_norms(model: torch.nn.Module, data: ImageData | TextData, batch_size: int) -> np.ndarray:
    """GraNd of every example of ``data``, in order (float64 numpy array of norms of float32 gradients).

    One ``torch.func.vmap(grad)`` per chunk of ``batch_size`` examples: every
    example's full gradient exists at once only within a chunk (chunk x parameters
    floats), so a smaller chunk uses less memory.
    """
    from torch.func import functional_call, grad, vmap

    model.eval()
    parameters = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    buffers = {name: b.detach() for name, b in model.named_buffers()}

    def loss(params, inputs, label):
        logits = functional_call(model, (params, buffers), (inputs.unsqueeze(0),))
        return F.cross_entropy(logits.float(), label.unsqueeze(0))

    per_example = vmap(grad(loss), in_dims=(None, 0, 0))
    norms = []
    for inputs, labels in data.inference_batches(batch_size):
        gradients = per_example(parameters, inputs, labels)
        squared = sum(g.flatten(1).pow(2).sum(dim=1) for g in gradients.values())
        norms.append(squared.sqrt())
    return torch.cat(norms).double().cpu().numpy() if norms else np.empty(0)


def last_linear(model: torch.nn.Module) -> torch.nn.Linear:
    """The model's last ``nn.Linear`` (in registration order): its classifier."""
    linears = [module for module in model.modules() if isinstance(module, torch.nn.Linear)]
    if not linears:
        raise StageInputError(f"{type(model).__name__} has no nn.Linear layer whose input could serve as its embedding")
    return linears[-1]


@torch.no_grad()
def penultimate_embeddings(
    model: torch.nn.Module, data: ImageData | TextData, batch_size: int, scratch: str | Path | None = None
) -> np.ndarray:
    """(examples, features) float32 inputs of the model's last ``nn.Linear``, read by a forward hook.

    Written into the array as they come, a chunk of about ``CHUNK_VALUES`` at a time: one that
    would exceed ``svp.scratch.IN_MEMORY_BYTES`` is a memory-mapped temporary file in the
    folder ``scratch`` (``svp.scratch.scratch_array``), so memory does not grow with the data.
    """
    model.eval()
    captured: list[torch.Tensor] = []
    hook = last_linear(model).register_forward_hook(lambda module, args, output: captured.append(args[0].detach().float().flatten(1)))

    def features():
        for inputs, _ in data.inference_batches(batch_size):
            model(inputs)
            yield from captured
            captured.clear()

    embedded, written = None, 0
    try:
        for chunk in on_cpu_in_chunks(features(), CHUNK_VALUES):
            if embedded is None:
                embedded = scratch_array((len(data), chunk.shape[1]), np.float32, scratch)
            embedded[written : written + len(chunk)] = chunk.numpy()
            written += len(chunk)
    finally:
        hook.remove()
    if embedded is None:
        return np.empty((0, 0), dtype=np.float32)
    return embedded
