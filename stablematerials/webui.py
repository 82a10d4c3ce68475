"""StableMaterials web UI: make, inspect and download tileable PBR materials in the browser.

    stablematerials app                # then open http://127.0.0.1:7860 (or `python app.py` in a checkout)
    stablematerials app --model PATH   # a pipeline folder (save_pretrained or the published layout)

This module is only the page, and the one module of the package that imports gradio (the `app` extra); nothing
else in the library imports it. The engine (`stablematerials.studio`) loads models, generates, renders and
packages; the page turns its fields into one `GenerationRequest` and shows what comes back. Importing this module
starts nothing and loads no model. The server's options are `stablematerials.studio.options`.

In order: the page's fields -> the request; the handlers (typed values in; files, pictures and text out); the
layout (`build_layout`); the events that join the two (`PageEvents`, `connect`); `build_demo`; the command line.
"""

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from .capture_request import CaptureRequest
from .defaults import (
    CAPTURE_SIZE,
    DEFAULT_GUIDANCE,
    DEFAULT_IMAGE_WEIGHT,
    default_output_size,
)
from .export import folder_formats
from .maps import MAP_NAMES
from .material import Material
from .metrics import seam_scores
from .studio import (
    GLB_SHAPES,
    MAP_LABELS,
    GenerationRequest,
    Limits,
    Studio,
    glb_for,
    light_direction,
    map_images,
    preview_image,
    prune_outputs,
    save_pictures,
    thumbnail,
    tiled_view,
    zip_material,
)
from .studio.options import add_server_arguments, check_server_options, is_loopback
from .values import parse_float, parse_int, parse_size

logger = logging.getLogger("stablematerials.app")

NORMAL_LABELS = {"opengl": "OpenGL (Blender, Unity, Godot)", "directx": "DirectX (Unreal, 3ds Max)", "both": "Both"}
RESOLUTIONS = (64, 128, 256, 384, 512, 768, 1024, 1536, 2048)
PHOTO_SIZES = (256, 512, 1024, 2048)  # the largest side of maps read from a photo (smaller photos keep their size)
HISTORY_SIZE = 8  # materials kept per browser session
SESSION_SECONDS = 2 * 3600  # a session's materials are freed this long after its last use
OUTPUT_SECONDS = 3600  # downloads older than this are deleted from the work folder
DISPLAY_SIDE = 512  # small tiled views are enlarged (nearest pixel) to at least this many pixels
DEFAULT_LIGHT = (130.0, 52.0)  # azimuth, elevation in degrees: upper left, as the renderer's default

INTRO = """# StableMaterials
Describe a surface (**"mossy cobblestone path"**) or drop in a picture of one as an image prompt (or both:
"this picture, but blue"), press **Generate**, and get five tileable PBR maps: base color, normal, height, roughness and metallic. Or, under
**From a photo**, get a photo's own maps: its bricks where its bricks are, the light taken out. Check the seams in the tiled view, look at the lit
preview and the 3D view, then download the material in the file naming your tool expects."""


# ----------------------------------------------------------------------------------------------
# Page fields -> request
# ----------------------------------------------------------------------------------------------


def upload_path(value: Any) -> str | None:
    """The file path of an upload as the page sends it unprocessed (a file-data dict), or a plain path."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        path = value.get("path")
        if not isinstance(path, str) or not path:
            raise ValueError("the image upload did not arrive; try adding the image again")
        return path
    if isinstance(value, (str, os.PathLike)):
        return str(value)
    raise ValueError(f"the image prompt must be a file, got {type(value).__name__}")


def request_from_form(form: dict[str, Any]) -> GenerationRequest:
    """The `GenerationRequest` the page's fields describe (numbers made whole, size parsed, seed only when fixed).

    Values arrive as the page sends them, unprocessed: the image prompt is a file-data dict (so that a file that is
    not an image reaches `GenerationRequest.validate` and gets its clear message), numbers may be floats."""
    size = str(form.get("resolution") or "").strip()
    try:
        height, width = parse_size("resolution", size) if size else (None, None)
    except ValueError:
        raise ValueError(f"resolution must be a size in pixels such as 512 (or 768x512), got {size!r}") from None
    random_seed = bool(form.get("random_seed", True))
    if not random_seed and form.get("seed") in (None, ""):
        raise ValueError("enter a seed, or tick 'Random seed'")
    folder = str(form.get("model_folder") or "").strip()
    steps = form.get("steps")
    return GenerationRequest(
        prompt=str(form.get("prompt") or ""),
        image=upload_path(form.get("image")),
        image_weight=parse_float("picture's share", form.get("image_weight", DEFAULT_IMAGE_WEIGHT)),
        negative_prompt=str(form.get("negative_prompt") or ""),
        steps=parse_int("steps", steps) if steps not in (None, "") else None,
        guidance=parse_float("guidance", form.get("guidance", DEFAULT_GUIDANCE)),
        seed=None if random_seed else parse_int("seed", form.get("seed")),
        tileable=bool(form.get("tileable", True)),
        width=width,
        height=height,
        variations=parse_int("variations", form.get("variations", 1)),
        model=folder or form.get("model") or None,
        variant=str(form.get("variant") or "auto"),
        naming=str(form.get("naming") or "plain"),
        normal_convention=str(form.get("normal_convention") or "opengl"),
        bit_depth=parse_int("bit depth", form.get("bit_depth", 16)),
    )


def capture_request_from_form(form: dict[str, Any]) -> CaptureRequest:
    """The `CaptureRequest` of the photo tab's fields (the photo a file-data dict, as the page sends it)."""
    photo = upload_path(form.get("photo"))
    if photo is None:
        raise ValueError("add a photo of a surface first (upload or paste one)")
    folder = str(form.get("model_folder") or "").strip()
    return CaptureRequest(
        photo=photo,
        tileable=bool(form.get("photo_tileable", True)),
        max_size=parse_int("largest side", form.get("photo_size", CAPTURE_SIZE)),
        model=folder or form.get("model") or None,
        naming=str(form.get("naming") or "plain"),
        normal_convention=str(form.get("normal_convention") or "opengl"),
        bit_depth=parse_int("bit depth", form.get("bit_depth", 16)),
    )


@contextlib.contextmanager
def user_errors(action: str) -> Iterator[None]:
    """Show a bad value as a message in the page; log anything unexpected and show a short message too."""
    try:
        yield
    except gr.Error:
        raise
    except ValueError as e:
        raise gr.Error(str(e), title="Cannot " + action, print_exception=False) from None
    except Exception as e:  # the server keeps running; the user sees what failed
        logger.exception("%s failed", action)
        raise gr.Error(f"{type(e).__name__}: {e}", title=f"Could not {action}", print_exception=False) from None


def seam_summary(seam: dict[str, tuple[float, float]], selected: str) -> str:
    """A markdown table of seam scores (1 or below: no more visible than the texture's own strongest edge)."""
    rows = [
        f"| {'**' + MAP_LABELS[name] + '**' if name == selected else MAP_LABELS[name]} | {v:.2f} | {h:.2f} |"
        for name, (v, h) in seam.items()
    ]
    worst = max(max(pair) for pair in seam.values())
    verdict = "seamless to the eye" if worst <= 1.1 else "a seam may show" if worst <= 2 else "visible seams"
    return "\n".join(
        [
            f"**Seam score** (worst {worst:.2f}: {verdict}). About 1 or below means the wrap-around edge is no "
            "stronger than the texture's own edges.",
            "",
            "| map | top/bottom | left/right |",
            "|---|---|---|",
            *rows,
        ]
    )


def seam_of(material: Material) -> dict[str, tuple[float, float]]:
    """The material's seam scores: those measured when it was made, else measured now."""
    return material.metadata.get("seam") or seam_scores(material)


def history_caption(material: Material) -> str:
    """A short label for a material in the session history."""
    meta = material.metadata
    label = meta.get("prompt") or "material"
    return label if meta.get("seed") is None else f"{label} · seed {meta.get('seed')}"


# ----------------------------------------------------------------------------------------------
# Handlers: typed values in, pictures, files and text out (no gradio components)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ViewSettings:
    """How the page shows and packages a material: the tiled map, the preview's light, the 3D shape, the download's
    naming, normal convention and bit depth."""

    tiled_map: str = "basecolor"
    light_azimuth: float = DEFAULT_LIGHT[0]
    light_elevation: float = DEFAULT_LIGHT[1]
    shape: str = "plane"
    naming: str = "plain"
    normal_convention: str = "opengl"
    bit_depth: int = 16

    @classmethod
    def from_form(cls, form: dict[str, Any]) -> "ViewSettings":
        """The settings among the page's fields."""
        return cls(**{f.name: form[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class MaterialView:
    """Every picture and file of one material as the page shows them: file paths (see `as_files`) and markdown."""

    maps: list[tuple[str, str]]  # (PNG file, label) per map
    tiled: str
    seam: str
    preview: str
    glb: str
    zip: str


@dataclass(frozen=True)
class Generated:
    """What one press of Generate made: the materials (first shown), the session's new history and its status."""

    materials: tuple[Material, ...]
    history: list[Material]
    seed: int | None  # None for maps read from a photo
    status: str


def as_files(pictures: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """The pictures as PNG files for gradio to serve (`save_pictures` says why not the images themselves)."""
    return {key: str(path) for key, path in save_pictures(pictures, out_dir).items()}


def tiled_picture(material: Material, map_name: str, out_dir: Path) -> tuple[str, str]:
    """The 2x2 tiled view of one map (a PNG file) and the seam table that marks it."""
    path = as_files({"tiled": tiled_view(material, map_name, min_side=DISPLAY_SIDE)}, out_dir)["tiled"]
    return path, seam_summary(seam_of(material), map_name)


def preview_picture(material: Material, azimuth: float, elevation: float, out_dir: Path) -> str:
    """The lit preview (sphere and plane) as a PNG file."""
    picture = preview_image(material, light_direction(float(azimuth), float(elevation)))
    return as_files({"preview": picture}, out_dir)["preview"]


def zip_download(material: Material, view: ViewSettings, out_dir: Path) -> str:
    """The material folder in the chosen naming, normal convention and bit depth, zipped."""
    return str(zip_material(material, view.naming, view.normal_convention, int(view.bit_depth), out_dir=out_dir))


def glb_download(material: Material, shape: str, out_dir: Path) -> str:
    """The material on a plane or sphere as a .glb file."""
    return str(glb_for(material, shape, out_dir=out_dir))


def material_view(material: Material, view: ViewSettings, out_dir: Path) -> MaterialView:
    """Every picture and file of one material, as the view settings ask."""
    labelled = map_images(material, view.normal_convention)
    light = light_direction(float(view.light_azimuth), float(view.light_elevation))
    files = as_files(
        {name: image for name, (image, _) in zip(MAP_NAMES, labelled)}
        | {"tiled": tiled_view(material, view.tiled_map, min_side=DISPLAY_SIDE), "preview": preview_image(material, light)},
        out_dir,
    )
    return MaterialView(
        maps=[(files[name], label) for name, (_, label) in zip(MAP_NAMES, labelled)],
        tiled=files["tiled"],
        seam=seam_summary(seam_of(material), view.tiled_map),
        preview=files["preview"],
        glb=glb_download(material, view.shape, out_dir),
        zip=zip_download(material, view, out_dir),
    )


def generate_materials(
    engine: Studio, request: GenerationRequest, history: list, out_dir: Path, progress: Any = None
) -> Generated:
    """Run one request through the engine (old downloads pruned first); the new materials go first in the history.
    `progress(fraction or (done, total), desc=..., unit=...)` is told how far it got, as gradio's `Progress` is."""
    progress = progress or (lambda *args, **kwargs: None)
    prune_outputs(out_dir, OUTPUT_SECONDS)
    progress(0.0, desc="Loading the model")
    result = engine.generate(request, lambda done, total: progress((done, total), desc="Denoising", unit="steps"))
    progress(1.0, desc="Rendering the preview and files")
    for material, scores in zip(result.materials, result.seam):
        material.metadata["seam"] = scores
    count = f"{len(result.materials)} materials" if len(result.materials) > 1 else "1 material"
    size = f"{result.request.width}×{result.request.height}"
    return Generated(
        materials=result.materials,
        history=(list(result.materials) + list(history or []))[:HISTORY_SIZE],
        seed=result.seed,
        status=f"Made {count} ({size}, {result.request.steps} steps) in {result.seconds:.1f} s · seed **{result.seed}**",
    )


def capture_material(engine: Studio, request: CaptureRequest, history: list, out_dir: Path) -> Generated:
    """Read one photo's maps through the engine (old downloads pruned first); the material goes first in the
    history."""
    prune_outputs(out_dir, OUTPUT_SECONDS)
    result = engine.capture(request)
    material = result.material
    material.metadata["seam"] = result.seam
    h, w = material.size
    framing = "tileable" if request.tileable else "the photo's framing"
    return Generated(
        materials=(material,),
        history=([material] + list(history or []))[:HISTORY_SIZE],
        seed=None,
        status=f"Read the maps of **{Path(request.photo).name}** ({w}×{h}, {framing}) in {result.seconds:.1f} s",
    )


def history_gallery_items(history: list[Material], out_dir: Path) -> list[tuple[str, str]]:
    """(thumbnail PNG file, caption) of each material in the session's history."""
    thumbnails = as_files({f"history_{k}": thumbnail(m) for k, m in enumerate(history)}, out_dir)
    return list(zip(thumbnails.values(), map(history_caption, history)))


def pick_from_history(history: list, index: Any) -> Material:
    """The history's material at `index` (a click in its gallery)."""
    if not history or index is None or not 0 <= int(index) < len(history):
        raise ValueError("that material is no longer in this session's history")
    return history[int(index)]


def chosen_model(model: str | None, folder: str | None) -> str | None:
    """The model the page names: the folder typed under More settings, else the one chosen in the list."""
    return (folder or "").strip() or model


def model_defaults(engine: Studio, model: str | None) -> tuple[str, int, str | None]:
    """A model's default variant, its steps, and its default resolution (None when its size is unknown)."""
    size = engine.native_size(model)
    variant = engine.default_variant(model)
    resolution = None if size is None else str(min(default_output_size(size), engine.limits.max_resolution))
    return variant, engine.default_steps(model, variant), resolution


# ----------------------------------------------------------------------------------------------
# The page: layout
# ----------------------------------------------------------------------------------------------


@dataclass
class Page:
    """The page's components, by role."""

    current: Any  # gr.State: the material shown
    history: Any  # gr.State: this session's materials, newest first
    prompt: Any
    image: Any
    image_weight: Any
    resolution: Any
    variations: Any
    tileable: Any
    model: Any
    variant: Any
    generate: Any
    status: Any
    negative_prompt: Any
    steps: Any
    guidance: Any
    seed: Any
    random_seed: Any
    model_folder: Any
    photo: Any
    photo_size: Any
    photo_tileable: Any
    capture: Any
    maps: Any
    tiled: Any
    tiled_map: Any
    seam: Any
    preview: Any
    light_azimuth: Any
    light_elevation: Any
    model3d: Any
    shape: Any
    naming: Any
    normal_convention: Any
    bit_depth: Any
    zip_file: Any
    glb_file: Any
    history_gallery: Any

    @property
    def request_fields(self) -> dict[str, Any]:
        """The fields a `GenerationRequest` is made of (see `request_from_form`)."""
        names = ("prompt", "image", "image_weight", "negative_prompt", "steps", "guidance", "seed", "random_seed", "tileable",
                 "resolution", "variations", "model", "model_folder", "variant", "naming", "normal_convention",
                 "bit_depth")  # fmt: skip
        return {name: getattr(self, name) for name in names}

    @property
    def capture_fields(self) -> dict[str, Any]:
        """The fields a `CaptureRequest` is made of (see `capture_request_from_form`)."""
        names = ("photo", "photo_size", "photo_tileable", "model", "model_folder", "naming", "normal_convention",
                 "bit_depth")  # fmt: skip
        return {name: getattr(self, name) for name in names}

    @property
    def view_fields(self) -> dict[str, Any]:
        """The fields of `ViewSettings`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(ViewSettings)}

    @property
    def shown(self) -> list[Any]:
        """The components that show one material."""
        return [self.maps, self.tiled, self.seam, self.preview, self.model3d, self.zip_file, self.glb_file]

    def show(self, view: MaterialView) -> dict[Any, Any]:
        """`view` as updates of the components that show it."""
        return {
            self.maps: view.maps, self.tiled: view.tiled, self.seam: view.seam, self.preview: view.preview,
            self.model3d: view.glb, self.glb_file: view.glb, self.zip_file: view.zip,
        }  # fmt: skip


def build_layout(engine: Studio) -> Page:
    """The page's components, laid out (call inside `gr.Blocks`): the inputs on the left, the results on the right."""
    current = gr.State(None, time_to_live=SESSION_SECONDS)
    history = gr.State([], time_to_live=SESSION_SECONDS)
    gr.Markdown(INTRO)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            inputs = input_column(engine)
        with gr.Column(scale=2, min_width=480):
            results = result_column()
    return Page(current=current, history=history, **inputs, **results)


def input_column(engine: Studio) -> dict[str, Any]:
    """The prompt tab and the photo tab, the status line, and the settings under More settings."""
    limits = engine.limits
    no_model_note = (
        ""
        if engine.model_choices()
        else "**No model found.** Start the app with `--model PATH` (a pipeline folder)"
        + (" or enter a model folder under *More settings*." if engine.allow_model_folders else ".")
    )
    c: dict[str, Any] = {}
    with gr.Tab("From a prompt", elem_id="tab-prompt"):
        c.update(prompt_inputs(engine))
    with gr.Tab("From a photo", elem_id="tab-photo"):
        c.update(photo_inputs(limits))
    c["status"] = gr.Markdown(no_model_note, elem_id="status")
    with gr.Accordion("More settings", open=False):
        c["negative_prompt"] = gr.Textbox(value="", label="Negative prompt", placeholder="what to avoid", lines=1)
        c["steps"] = gr.Slider(
            1, limits.max_steps, value=engine.default_steps(), step=1, label="Steps",
            info="4 for the fast student model; more for the full model",
        )  # fmt: skip
        c["guidance"] = gr.Slider(
            0, min(15.0, limits.max_guidance), value=DEFAULT_GUIDANCE, step=0.5, label="Guidance"
        )
        with gr.Row():
            c["seed"] = gr.Number(value=0, precision=0, label="Seed (when not random)", minimum=0, elem_id="seed")
            c["random_seed"] = gr.Checkbox(value=True, label="Random seed")
        c["model_folder"] = gr.Textbox(
            value="",
            label="Model folder on this computer (overrides the list)",
            placeholder="/path/to/model (a folder with model_index.json)",
            visible=engine.allow_model_folders,
        )
    return c


def prompt_inputs(engine: Studio) -> dict[str, Any]:
    """The prompt tab: a text or image prompt, the main settings, the model, Generate."""
    limits = engine.limits
    choices = [(c.label, str(c.path)) for c in engine.model_choices()]
    default_size = min(default_output_size(engine.native_size() or 512), limits.max_resolution)
    sizes = sorted({default_size, *(s for s in RESOLUTIONS if s <= limits.max_resolution)})
    c: dict[str, Any] = {}
    c["prompt"] = gr.Textbox(
        value="", label="Prompt", placeholder="mossy cobblestone path", lines=2, max_lines=4, elem_id="prompt"
    )
    c["image"] = gr.Image(
        label="…or an image prompt (upload or paste a photo; with a text prompt too, the two are mixed)",
        type="filepath",
        sources=["upload", "clipboard"],
        height=180,
        elem_id="image-prompt",
    )
    c["image_weight"] = gr.Slider(
        0.0, 1.0, value=DEFAULT_IMAGE_WEIGHT, step=0.05, label="Picture's share", elem_id="image-weight",
        info="with both a text prompt and a picture: 0 is the text alone, 1 the picture alone ('this picture, but blue')",
    )  # fmt: skip
    with gr.Row():
        c["resolution"] = gr.Dropdown(
            [str(s) for s in sizes], value=str(default_size), label="Resolution (px)",
            allow_custom_value=True, elem_id="resolution",
        )  # fmt: skip
        c["variations"] = gr.Slider(1, limits.max_variations, value=1, step=1, label="Variations")
    c["tileable"] = gr.Checkbox(value=True, label="Tileable (seamless edges)")
    c["model"] = gr.Dropdown(
        choices, value=choices[0][1] if choices else None, label="Model", elem_id="model",
        info=None if choices else "no model found",
    )  # fmt: skip
    c["variant"] = gr.Radio(
        [("Fast (4-step student)", "student"), ("Full (guided teacher)", "teacher")],
        value=engine.default_variant(), label="Model speed", elem_id="variant",
        info="the fast student model, or the full model it was distilled from; a model starts on its better one",
    )  # fmt: skip
    c["generate"] = gr.Button("Generate", variant="primary", elem_id="generate")
    return c


def photo_inputs(limits: Limits) -> dict[str, Any]:
    """The photo tab: a photo of a surface becomes its own maps (`stablematerials capture` in the page)."""
    default = min(CAPTURE_SIZE, limits.max_resolution)
    sizes = sorted({default, *(s for s in PHOTO_SIZES if s <= limits.max_resolution)})
    c: dict[str, Any] = {}
    c["photo"] = gr.Image(
        label="Photo of a surface, taken from the front (upload or paste)",
        type="filepath", sources=["upload", "clipboard"], height=220, elem_id="photo",
    )  # fmt: skip
    with gr.Row():
        c["photo_size"] = gr.Dropdown(
            [str(s) for s in sizes], value=str(default), label="Largest side (px)", elem_id="photo-size",
            info="smaller photos keep their size",
        )  # fmt: skip
        c["photo_tileable"] = gr.Checkbox(
            value=True, label="Tileable", info="joins the photo's opposite borders; off keeps its exact framing"
        )
    c["capture"] = gr.Button("Make maps from the photo", variant="primary", elem_id="capture")
    return c


def result_column() -> dict[str, Any]:
    """The maps, the tiled view and seam scores, the lit preview, the 3D view, the downloads and the history."""
    c: dict[str, Any] = {}
    c["maps"] = gr.Gallery(
        label="Maps", columns=len(MAP_NAMES), rows=1, height=220, format="png", object_fit="contain",
        allow_preview=True, elem_id="maps",
    )  # fmt: skip
    with gr.Row():
        with gr.Column():
            c["tiled"] = gr.Image(label="Tiled 2×2", format="png", interactive=False, elem_id="tiled")
            c["tiled_map"] = gr.Dropdown(
                [(MAP_LABELS[m], m) for m in MAP_NAMES], value="basecolor", label="Map to tile", elem_id="tiled-map"
            )
            c["seam"] = gr.Markdown(elem_id="seam")
        with gr.Column():
            c["preview"] = gr.Image(
                label="Preview: sphere and plane", format="png", interactive=False, elem_id="preview"
            )
            c["light_azimuth"] = gr.Slider(
                0, 360, value=DEFAULT_LIGHT[0], step=5, label="Light direction (°)", elem_id="light-azimuth"
            )
            c["light_elevation"] = gr.Slider(
                5, 90, value=DEFAULT_LIGHT[1], step=1, label="Light height (°)", elem_id="light-elevation"
            )
    with gr.Row():
        with gr.Column():
            c["model3d"] = gr.Model3D(
                label="3D view (drag to orbit)", height=360, clear_color=(0.16, 0.16, 0.18, 1.0),
                camera_position=(90, 50, None), elem_id="model3d",
            )  # fmt: skip
            c["shape"] = gr.Radio(list(GLB_SHAPES), value="plane", label="3D shape")
        with gr.Column():
            c["naming"] = gr.Dropdown(
                [(f.label, f.name) for f in folder_formats()], value="plain", label="File naming"
            )
            c["normal_convention"] = gr.Radio(
                [(label, k) for k, label in NORMAL_LABELS.items()], value="opengl", label="Normal map"
            )
            c["bit_depth"] = gr.Radio([("16-bit", 16), ("8-bit", 8)], value=16, label="Height and normal PNGs")
            c["zip_file"] = gr.File(label="Material folder (.zip)", interactive=False, elem_id="zip")
            c["glb_file"] = gr.File(label="3D model (.glb)", interactive=False, elem_id="glb")
    c["history_gallery"] = gr.Gallery(
        label="This session's materials (click one to show it again)", columns=8, rows=1, height=160,
        format="png", allow_preview=False, fit_columns=False, elem_id="history",
    )  # fmt: skip
    return c


# ----------------------------------------------------------------------------------------------
# The page: events
# ----------------------------------------------------------------------------------------------


class PageEvents:
    """The page's event handlers: each turns the raw field values into typed ones, calls a handler above and
    returns the components' updates. User errors become messages in the page (`user_errors`)."""

    def __init__(self, page: Page, engine: Studio, out_dir: Path) -> None:
        self.page, self.engine, self.out_dir = page, engine, out_dir

    def on_generate(
        self,
        history_list: list,
        image: Any = None,  # the fields that may be empty are named, so API clients may leave them out
        model: Any = None,
        progress: gr.Progress = gr.Progress(),
        **form: Any,
    ) -> dict:
        page = self.page
        with user_errors("generate"):
            request = request_from_form(form | {"image": image, "model": model})
            made = generate_materials(self.engine, request, history_list, self.out_dir, progress)
            return self.show_made(made, form) | {page.seed: made.seed}

    def on_capture(self, history_list: list, photo: Any = None, model: Any = None, **form: Any) -> dict:
        with user_errors("read the photo"):
            request = capture_request_from_form(form | {"photo": photo, "model": model})
            return self.show_made(capture_material(self.engine, request, history_list, self.out_dir), form)

    def show_made(self, made: Generated, form: dict[str, Any]) -> dict:
        """The updates that show what Generate or "Make maps" made: its first material, the history, the status."""
        page, first = self.page, made.materials[0]
        return page.show(material_view(first, ViewSettings.from_form(form), self.out_dir)) | {
            page.current: first,
            page.history: made.history,
            page.history_gallery: history_gallery_items(made.history, self.out_dir),
            page.status: made.status,
        }

    def on_select(self, history_list: list, evt: gr.SelectData, **view: Any) -> dict:
        page = self.page
        with user_errors("show that material"):
            material = pick_from_history(history_list, evt.index)
            return page.show(material_view(material, ViewSettings.from_form(view), self.out_dir)) | {
                page.current: material,
                page.seed: material.metadata.get("seed"),
                page.status: f"Showing {history_caption(material)}",
            }

    def on_tiled_map(self, material: Material | None, map_name: str) -> dict:
        if material is None:
            return {self.page.tiled: None, self.page.seam: ""}
        with user_errors("tile the map"):
            tiled, seam = tiled_picture(material, map_name, self.out_dir)
            return {self.page.tiled: tiled, self.page.seam: seam}

    def on_light(self, material: Material | None, azimuth: float, elevation: float) -> Any:
        if material is None:
            return None
        with user_errors("render the preview"):
            return preview_picture(material, azimuth, elevation, self.out_dir)

    def on_download_settings(self, material: Material | None, naming: str, convention: str, depth: int) -> Any:
        if material is None:
            return None
        with user_errors("write the zip"):
            view = ViewSettings(naming=naming, normal_convention=convention, bit_depth=depth)
            return zip_download(material, view, self.out_dir)

    def on_shape(self, material: Material | None, shape: str) -> dict:
        if material is None:
            return {self.page.model3d: None, self.page.glb_file: None}
        with user_errors("write the .glb"):
            path = glb_download(material, shape, self.out_dir)
            return {self.page.model3d: path, self.page.glb_file: path}

    def on_model(self, model: str | None, folder: str) -> dict:
        variant, steps, resolution = model_defaults(self.engine, chosen_model(model, folder))
        updates = {self.page.steps: gr.update(value=steps), self.page.variant: variant}
        if resolution is not None:
            updates[self.page.resolution] = gr.update(value=resolution)
        return updates

    def on_variant(self, model: str | None, folder: str, variant: str) -> dict:
        return gr.update(value=self.engine.default_steps(chosen_model(model, folder), variant))


def connect(page: Page, events: PageEvents) -> None:
    """Wire the page's events to their handlers (call inside `gr.Blocks`). Generate and Capture are the public API
    endpoints."""
    private = {"api_visibility": "private"}
    gr.on(
        [page.generate.click, page.prompt.submit],
        events.on_generate,
        inputs_kwargs=page.request_fields | page.view_fields | {"history_list": page.history},
        outputs=[*page.shown, page.current, page.history, page.history_gallery, page.seed, page.status],
        api_name="generate",
        preprocess=False,  # request_from_form reads the raw values; GenerationRequest.validate checks them
        concurrency_limit=1,
        concurrency_id="generate",
    )
    gr.on(
        [page.capture.click],
        events.on_capture,
        inputs_kwargs=page.capture_fields | page.view_fields | {"history_list": page.history},
        outputs=[*page.shown, page.current, page.history, page.history_gallery, page.status],
        api_name="capture",
        preprocess=False,  # capture_request_from_form reads the raw values; CaptureRequest.validate checks them
        concurrency_limit=1,
        concurrency_id="generate",  # one CPU: photos and prompts wait in the same queue
    )
    page.history_gallery.select(
        events.on_select,
        inputs_kwargs=page.view_fields | {"history_list": page.history},
        outputs=[*page.shown, page.current, page.seed, page.status],
        **private,
    )
    page.tiled_map.change(events.on_tiled_map, [page.current, page.tiled_map], [page.tiled, page.seam], **private)
    for slider in (page.light_azimuth, page.light_elevation):
        slider.release(events.on_light, [page.current, page.light_azimuth, page.light_elevation], page.preview, **private)
    download = [page.current, page.naming, page.normal_convention, page.bit_depth]
    for field in (page.naming, page.normal_convention, page.bit_depth):
        field.change(events.on_download_settings, download, page.zip_file, **private)
    page.shape.change(events.on_shape, [page.current, page.shape], [page.model3d, page.glb_file], **private)
    model_outputs = [page.steps, page.resolution, page.variant]
    page.model.change(events.on_model, [page.model, page.model_folder], model_outputs, **private)
    page.model_folder.blur(events.on_model, [page.model, page.model_folder], model_outputs, **private)
    page.variant.input(events.on_variant, [page.model, page.model_folder, page.variant], page.steps, **private)


def build_demo(engine: Studio, work_dir: str | os.PathLike | None = None) -> gr.Blocks:
    """The page for `engine`. Downloads are written under `work_dir` (default: a new temporary folder)."""
    out_dir = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="stablematerials-app-"))
    with gr.Blocks(title="StableMaterials", analytics_enabled=False, delete_cache=(1800, OUTPUT_SECONDS)) as demo:
        page = build_layout(engine)
        connect(page, PageEvents(page, engine, out_dir))
    return demo


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> int:
    """Start the server described by parsed options (blocks until it is stopped)."""
    check_server_options(args)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry or version check
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local model folders only
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    local = is_loopback(args.host) and not args.share
    allow_folders = args.model_folders if args.model_folders is not None else local
    if not local:
        logger.warning("the page is reachable from other computers (--host %s%s)", args.host, ", --share" if args.share else "")
    engine = Studio(
        args.model,
        limits=Limits(max_resolution=args.max_size, max_variations=args.max_variations),
        allow_model_folders=allow_folders,
    )
    if engine.default_model is None:
        logger.warning("no model found: pass --model PATH; the page will say so when someone presses Generate")
    demo = build_demo(engine)
    demo.queue(max_size=args.max_queue, default_concurrency_limit=1)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        max_file_size=args.max_upload,
        ssr_mode=False,
        show_error=False,
    )
    return 0


def main(argv: list[str] | None = None, prog: str = "app.py") -> int:
    """`python app.py [options]`: parse the options and serve the page."""
    parser = argparse.ArgumentParser(prog=prog, description="StableMaterials web UI for artists.")
    add_server_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return serve(args)
    except ValueError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
