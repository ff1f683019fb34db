"""Images read from disk as a model trains or scores: a map-style dataset read by DataLoader workers.

The training loop (``svp.training.loop``) asks its data for batches; in memory
(:class:`svp.training.loop.ImageData`) they are gathered from one tensor on the device,
here they are decoded from their files by worker processes, so the data set never has
to fit anywhere. Training batches take torchvision's random-resized crop and (where the
data set flips) a horizontal flip; scoring and evaluation resize the shorter side to the
manifest's ``resize`` and take the centre crop, un-augmented, as torchvision's reference
ImageNet training does. Workers hand over uint8 pixels (a quarter of float32's bytes),
normalised on the device as in memory.

A subset is the list of indices the loop asks for: a 30 % subset opens 30 % of the files.
The augmentation is drawn in the workers from a seed the run's generator gives each
epoch, so a run is reproducible for a seed and a number of workers, and a resumed run
draws what the killed one would have.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from svp.data.disk import DiskSplit, loader_workers
from svp.errors import DataError, StageInputError
from svp.training.distributed import ONE_PROCESS, Ranks

REPREPARE = "rerun the prepare step (`snakemake --forcerun prepare_data ...`, or `svp prepare`)"


class DiskImages(torch.utils.data.Dataset):
    """Example ``i`` of a prepared split: (uint8 (3, size, size) pixels, i), decoded and cropped."""

    def __init__(self, split: DiskSplit, train: bool, flip: bool):
        from torchvision.transforms import v2 as T

        self.split = split
        size = split.image_size
        if train:
            steps = [T.RandomResizedCrop(size, antialias=True)] + ([T.RandomHorizontalFlip()] if flip else [])
        else:
            steps = [T.Resize(split.resize, antialias=True), T.CenterCrop(size)]
        self.transform = T.Compose([T.PILToTensor(), *steps])

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        from PIL import Image

        path = os.path.join(self.split.folder, self.split.paths[index])
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")  # grayscale, CMYK, palette and PNGs named .JPEG alike
        except FileNotFoundError:
            raise DataError(f"{path}: gone since the data set was prepared; restore it, or {REPREPARE}") from None
        except (OSError, ValueError, SyntaxError, EOFError) as error:  # PIL's UnidentifiedImageError is an OSError
            raise DataError(
                f"{path}: cannot be decoded ({str(error).strip() or type(error).__name__}): truncated, corrupt or "
                "replaced since it was prepared. Replace or remove it and rerun the prepare step, or prepare with "
                "dataset.check_images: decode and dataset.skip_bad_images: true to find and leave out such files"
            ) from None
        return self.transform(image), index


@dataclass
class DiskImageData:
    """A prepared split read from disk, with the interface of ``svp.training.loop.ImageData`` that the
    loop, evaluation and scoring use: ``labels``, ``device``, ``in_channels``, ``training_batches``,
    ``inference_batches``."""

    split: DiskSplit
    labels: torch.Tensor  # on the device
    mean: torch.Tensor  # (1, 3, 1, 1), in [0, 1] units
    std: torch.Tensor
    flip: bool
    workers: int

    @classmethod
    def from_split(cls, split: DiskSplit, y, manifest: dict, device: torch.device) -> "DiskImageData":
        as_channels = lambda v: torch.tensor(v, dtype=torch.float32, device=device).view(1, -1, 1, 1)  # noqa: E731
        labels = torch.from_numpy(np.asarray(y)).long().to(device)
        return cls(split, labels, as_channels(manifest["mean"]), as_channels(manifest["std"]),
                   bool(manifest["augment"]["flip"]), loader_workers())

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def device(self) -> torch.device:
        return self.labels.device

    @property
    def in_channels(self) -> int:
        return 3

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) to float, less the channel mean, over the std; channels-last, as the models are."""
        images = pixels.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        return images.float().div_(255).sub_(self.mean).div_(self.std)

    def training_batches(
        self, order: torch.Tensor, batch_size: int, augment: dict | None, generator: torch.Generator,
        ranks: Ranks = ONE_PROCESS,
    ):
        """(index, inputs, labels) of this rank's share of each batch of ``order`` (indices), in order,
        always random-resized crops (flipped where the data set flips): ``augment``, the in-memory
        path's crop and flip, is not read. On several processes (``ranks``) the shares come from
        :meth:`Ranks.batches`; a share left empty (a last global batch smaller than the ranks)
        is handed over as an empty batch, a step on nothing that keeps the ranks in step."""
        # One draw per epoch from the run's generator (the same on every rank) seeds the
        # workers' crops and flips; each rank adds its own number so ranks crop differently.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)) + ranks.rank
        batches = ranks.batches(order.cpu().tolist(), batch_size)
        filled = [batch for batch in batches if batch]  # a DataLoader cannot collate an empty batch
        last = None
        for last in self._batches(filled, train=True, seed=seed):
            yield last
        for _ in range(len(batches) - len(filled)):
            index, inputs, labels = last
            yield index[:0], inputs[:0], labels[:0]

    def inference_batches(self, batch_size: int):
        """(inputs, labels) of every example, in order, un-augmented."""
        batches = [list(range(start, min(start + batch_size, len(self)))) for start in range(0, len(self), batch_size)]
        for _, inputs, labels in self._batches(batches, train=False, seed=0):
            yield inputs, labels

    def _batches(self, batches: list[list[int]], train: bool, seed: int):
        loader = torch.utils.data.DataLoader(
            DiskImages(self.split, train, self.flip), batch_sampler=batches, num_workers=self.workers,
            pin_memory=self.device.type == "cuda", generator=torch.Generator().manual_seed(seed),
            prefetch_factor=4 if self.workers else None,
        )
        try:
            for pixels, index in loader:
                index = index.to(self.device, non_blocking=True)
                yield index, self.normalise(pixels), self.labels.index_select(0, index)
        except DataError as error:  # raised in a worker: DataLoader wraps its message in the worker's traceback
            raise DataError(str(error).rsplit("DataError: ", 1)[-1].strip()) from None
        except RuntimeError as error:
            if "DataLoader worker" not in str(error):
                raise
            raise StageInputError(
                f"a process reading the images died ({str(error).strip().splitlines()[0]}); the likeliest cause is "
                "memory: give the job more, or fewer reader processes (SVP_LOADER_WORKERS). Rerun to resume "
                "training after its last finished epoch"
            ) from None
