"""One way to capture: the typed `CaptureRequest` (a photo -> its own PBR maps) and `capture(pipe, request)`.

The command line (`stablematerials capture`), the web UI's engine and the Python API read photos through this one
function, so a photo gives the same maps everywhere, with the same defaults and metadata. The model is the capture
pipeline (`stablematerials.capture`), found by `stablematerials.loading.load_capture_pipeline`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .defaults import CAPTURE_SIZE
from .generation import Limits, check_output_options, check_side, local_limits
from .material import Material
from .values import slug

if TYPE_CHECKING:
    from .capture import StableMaterialsCapturePipeline


@dataclass(frozen=True)
class CaptureRequest:
    """One photo to read: `photo` (an image file), `tileable` maps (the default) or the photo's exact framing,
    `max_size` pixels per side at most (the photo's own size below it), `model` (None: the caller's default capture
    model, otherwise a capture folder or a model folder holding `capture/`), and how the folder is written."""

    photo: str
    tileable: bool = True
    max_size: int = CAPTURE_SIZE
    model: str | None = None
    naming: str = "plain"
    normal_convention: str = "opengl"
    bit_depth: int = 16

    @property
    def base_name(self) -> str:
        """The photo file's stem as a file-friendly name."""
        return slug(Path(self.photo).stem)

    def validate(self, limits: Limits | None = None, check_files: bool = True) -> None:
        """Raise ValueError naming the first bad value. `check_files=False` leaves the photo to be checked when it
        is read."""
        from .pictures import check_image_file

        limits = limits or local_limits()
        if not isinstance(self.photo, str) or not self.photo.strip():
            raise ValueError("give a photo (an image file of a surface)")
        if check_files:
            check_image_file(self.photo, "photo")
        if not isinstance(self.tileable, bool):
            raise ValueError(f"tileable must be true or false, got {self.tileable!r}")
        if isinstance(self.max_size, bool) or not isinstance(self.max_size, int) or self.max_size < 32:
            raise ValueError(f"max size must be a whole number of pixels, at least 32, got {self.max_size!r}")
        check_side("max size", self.max_size, limits)
        check_output_options(self.naming, self.normal_convention, self.bit_depth)


@dataclass(frozen=True)
class CaptureResult:
    """What one request made: the material (aligned with the photo), the time taken and its seam scores."""

    request: CaptureRequest
    material: Material
    seconds: float
    seam: dict[str, tuple[float, float]]


def capture(
    pipe: StableMaterialsCapturePipeline, request: CaptureRequest, *, limits: Limits | None = None
) -> CaptureResult:
    """Read the maps of `request.photo` with `pipe`; the material's metadata names the photo."""
    from .metrics import seam_scores

    request.validate(limits, check_files=False)  # the photo is checked as it is read
    start = time.perf_counter()
    material = pipe(request.photo, tileable=request.tileable, max_size=request.max_size).images[0]
    material.metadata["prompt"] = f"<photo:{Path(request.photo).name}>"
    material.metadata["name"] = request.base_name
    return CaptureResult(request, material, time.perf_counter() - start, seam_scores(material))
