"""JPEG bytes to CNN crops with PyTorch: nvjpeg on a CUDA GPU, libjpeg-turbo on the CPU.

The CPU path of :mod:`catdog_sk.preprocess` decodes with Pillow and resizes with
Pillow's anti-aliased bicubic filter. On a GPU that decoding, not the network,
caps the rate (about 2,600 photos/s with 15 decoding workers against 12,000+ for
the network alone, see issue 15), so with ``device='cuda'`` the JPEG files go to
the GPU as bytes: batched ``torchvision.io.decode_jpeg(..., device='cuda')``,
the EXIF orientation applied there, then the same resize and centre crop as
:func:`catdog_sk.preprocess.resize_shorter_center_crop` done with
``torch.nn.functional.interpolate(mode='bicubic', antialias=True)``. A batch is
decoded in consecutive sub-batches of at most :data:`MAX_BATCH_PIXELS` pixels,
summed from the JPEG headers before any is decoded, so 48 photos of 36 MP cost
what one sub-batch costs, not 5 GB at once (issue 25).

The same functions run on the CPU (``device='cpu'``), which is how the tests
check the pipeline on machines without a GPU: torchvision's CPU decoder gives
Pillow's pixels exactly, and the resize differs from Pillow's by about 0.2
grey levels on average.
"""

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from ..exceptions import ImageDecodeError
from ..preprocess import center_crop_geometry, image_size

__all__ = ["MAX_BATCH_PIXELS", "EncodedImage", "DecodedJpegs", "decode_jpegs", "pixel_batches", "orient",
           "resize_shorter_center_crop_torch"]


@dataclass(frozen=True)
class EncodedImage:
    """A JPEG file's bytes, left undecoded for the batch stage (see ``EmbeddingExtractor.prepare_encoded``)."""

    data: bytes
    path: str
    orientation: int
    max_pixels: object


#: Decoded pixels one decoder call may hold (sum of the header sizes of its JPEGs): 64 MP is 192 MB of
#: RGB, a few dozen phone photos or hundreds of small ones per call; a bigger photo is decoded alone.
MAX_BATCH_PIXELS = 64_000_000


def _quiet_decode(inputs, device):
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders in favour of TorchCodec
        warnings.simplefilter("ignore")
        return decode_jpeg(inputs, mode=ImageReadMode.RGB, device=device)


def _decode_batch(datas, device):
    """One decoder call for ``datas``; a file the decoder refuses gives None in its place."""
    import torch

    inputs = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
    try:
        return list(_quiet_decode(inputs, device))
    except (RuntimeError, ValueError):  # one bad file fails the batch: decode one by one to learn which
        out = []
        for tensor in inputs:
            try:
                out.append(_quiet_decode(tensor, device))
            except (RuntimeError, ValueError):
                out.append(None)
        return out


def _header_pixels(data, budget):
    """Width * height from a JPEG's header (nothing decoded); ``budget`` when the header cannot be read."""
    try:
        width, height = image_size(data, max_pixels=None)
    except ImageDecodeError:  # the decoder refuses it too, alone in its sub-batch: Pillow reports why
        return budget
    return width * height


def pixel_batches(pixels, budget):
    """Split consecutive images into sub-batches of at most ``budget`` pixels (an image over it alone).

    Parameters
    ----------
    pixels : sequence of int
        Each image's pixel count, in order.
    budget : int
        Largest sum of pixels in one sub-batch.

    Returns
    -------
    batches : list of range
        Consecutive, covering ``range(len(pixels))``.
    """
    batches, start, total = [], 0, 0
    for i, n in enumerate(pixels):
        if i > start and total + n > budget:
            batches.append(range(start, i))
            start, total = i, 0
        total += n
    if start < len(pixels):
        batches.append(range(start, len(pixels)))
    return batches


class DecodedJpegs(Sequence):
    """The decoded images of :func:`decode_jpegs`, decoded one pixel-bounded sub-batch at a time.

    Iterating holds one sub-batch (at most ``max_batch_pixels`` decoded pixels, or one larger image) and
    hands each image over as it goes, so a loop that keeps only what it makes of each image (its crops)
    needs memory for one sub-batch whatever the batch's megapixels. Indexing decodes the sub-batch that
    holds the index and keeps it until another one is asked for.
    """

    def __init__(self, datas, device, max_batch_pixels):
        self._datas, self._device = list(datas), device
        budget = int(max_batch_pixels)
        self.batches = pixel_batches([_header_pixels(d, budget) for d in self._datas], budget)
        self._held = None  # (sub-batch number, its images), for indexing

    def __len__(self):
        return len(self._datas)

    def _decode(self, batch):
        return _decode_batch([self._datas[i] for i in batch], self._device)

    def __iter__(self):
        for batch in self.batches:
            self._held = None
            images = self._decode(batch)
            for k in range(len(images)):
                image, images[k] = images[k], None  # the caller's reference is the only one left
                yield image
                del image
            del images

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]  # IndexError and negative indices as for a list
        b = next(b for b, batch in enumerate(self.batches) if index in batch)
        if self._held is None or self._held[0] != b:
            self._held = None
            self._held = (b, self._decode(self.batches[b]))
        return self._held[1][index - self.batches[b].start]


def decode_jpegs(datas, *, device="cuda", max_batch_pixels=None):
    """Decode JPEG files, batched under a pixel budget; a file the decoder refuses gives None in its place.

    The files are split into consecutive sub-batches of at most ``max_batch_pixels`` pixels, read
    from their headers before any is decoded (a larger photo is decoded alone), and each sub-batch
    is decoded when it is reached: peak memory follows the budget, not the batch's megapixels.

    Parameters
    ----------
    datas : list of bytes
    device : str, default='cuda'
        ``'cuda'`` decodes with nvjpeg; ``'cpu'`` with torchvision's libjpeg-turbo.
    max_batch_pixels : int, default=None
        Largest sum of decoded pixels one decoder call may hold; None: :data:`MAX_BATCH_PIXELS`.

    Returns
    -------
    images : DecodedJpegs
        A sequence of (torch.Tensor of shape (3, height, width), dtype uint8, on ``device``) or None,
        as stored, EXIF orientation not applied (see :func:`orient`). Iterate over it, keeping only
        what each image is turned into, for bounded memory.
    """
    return DecodedJpegs(datas, device, MAX_BATCH_PIXELS if max_batch_pixels is None else max_batch_pixels)


def orient(image, orientation):
    """Apply an EXIF orientation (1-8) to a (3, H, W) tensor, as ``PIL.ImageOps.exif_transpose`` does."""
    if orientation == 2:
        return image.flip(2)
    if orientation == 3:
        return image.flip((1, 2))
    if orientation == 4:
        return image.flip(1)
    if orientation == 5:  # transpose
        return image.transpose(1, 2)
    if orientation == 6:  # rotate 270 (clockwise 90)
        return image.rot90(-1, (1, 2))
    if orientation == 7:  # transverse
        return image.transpose(1, 2).flip((1, 2))
    if orientation == 8:  # rotate 90 (counter-clockwise)
        return image.rot90(1, (1, 2))
    return image


def resize_shorter_center_crop_torch(image, size, *, crop_pct=1.0):
    """:func:`catdog_sk.preprocess.resize_shorter_center_crop` for a (3, H, W) uint8 tensor, on its device.

    Same output sizes, crop offsets and aspect bound
    (:func:`~catdog_sk.preprocess.center_crop_geometry`); torch's anti-aliased
    bicubic filter in place of Pillow's (mean absolute difference about 0.2
    grey levels on the shared photos).
    """
    import torch.nn.functional as F

    (rows, cols), (new_h, new_w), (top, left) = center_crop_geometry(*image.shape[1:], size, crop_pct=crop_pct)
    image = image[:, rows, cols]
    if (new_h, new_w) != tuple(image.shape[1:]) and image.device.type == "cpu":
        # torch's uint8 kernels: no float copy of the photo (432 MB for 36 MP, which decided the decoder's
        # peak memory), within one grey level of the float filter.
        image = F.interpolate(image.unsqueeze(0), size=(new_h, new_w), mode="bicubic", antialias=True,
                              align_corners=False)[0]
    elif (new_h, new_w) != tuple(image.shape[1:]):  # CUDA has no uint8 bicubic
        resized = F.interpolate(image.unsqueeze(0).float(), size=(new_h, new_w), mode="bicubic",
                                antialias=True, align_corners=False)
        image = resized[0].round_().clamp_(0, 255).to(image.dtype)
    return image[:, top:top + size, left:left + size].contiguous()
