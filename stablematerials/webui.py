"""StableMaterials web UI: make, inspect and download tileable PBR materials in the browser.

    stablematerials app                # then open http://127.0.0.1:7860 (or `python app.py` in a checkout)
    stablematerials app --model PATH   # a pipeline folder (save_pretrained or the published layout)

This module is only the page, and the one module of the package that imports gradio (the `app` extra); nothing
else in the library imports it. The engine (`stablematerials.studio`) loads models, generates, renders and
packages; the page turns its fields into one `GenerationRequest` and shows what comes back. Importing this module
starts nothing and loads no model. The server's options are `stablematerials.studio.options`.
"""

import argparse
import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from .defaults import DEFAULT_GUIDANCE, default_output_size
from .io import NAMING_PRESETS
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

NAMING_LABELS = {
    "plain": "Plain (basecolor.png, normal.png, ...)",
    "ambientcg": "ambientCG (_Color, _NormalGL, _Displacement, ...)",
    "polyhaven": "Poly Haven (_diff, _nor_gl, _disp, ...)",
}
NORMAL_LABELS = {"opengl": "OpenGL (Blender, Unity, Godot)", "directx": "DirectX (Unreal, 3ds Max)", "both": "Both"}
RESOLUTIONS = (64, 128, 256, 384, 512, 768, 1024, 1536, 2048)
HISTORY_SIZE = 8  # materials kept per browser session
SESSION_SECONDS = 2 * 3600  # a session's materials are freed this long after its last use
OUTPUT_SECONDS = 3600  # downloads older than this are deleted from the work folder
DISPLAY_SIDE = 512  # small tiled views are enlarged (nearest pixel) to at least this many pixels
DEFAULT_LIGHT = (130.0, 52.0)  # azimuth, elevation in degrees: upper left, as the renderer's default

INTRO = """# StableMaterials
Describe a surface (**"mossy cobblestone path"**) or drop in a photo, press **Generate**, and get five tileable
PBR maps: base color, normal, height, roughness and metallic. Check the seams in the tiled view, look at the lit
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
    return f"{meta.get('prompt') or 'material'} · seed {meta.get('seed')}"


# ----------------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------------


def build_demo(engine: Studio, work_dir: str | os.PathLike | None = None) -> gr.Blocks:
    """The page for `engine`. Downloads are written under `work_dir` (default: a new temporary folder)."""
    out_dir = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="stablematerials-app-"))
    limits = engine.limits
    choices = [(c.label, str(c.path)) for c in engine.model_choices()]
    native = engine.native_size() or 512
    default_size = min(default_output_size(native), limits.max_resolution)
    sizes = sorted({default_size, *(s for s in RESOLUTIONS if s <= limits.max_resolution)})
    no_model_note = (
        ""
        if choices
        else "**No model found.** Start the app with `--model PATH` (a pipeline folder)"
        + (" or enter a model folder under *More settings*." if engine.allow_model_folders else ".")
    )

    with gr.Blocks(title="StableMaterials", analytics_enabled=False, delete_cache=(1800, OUTPUT_SECONDS)) as demo:
        current = gr.State(None, time_to_live=SESSION_SECONDS)
        history = gr.State([], time_to_live=SESSION_SECONDS)
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            # ---- inputs ----
            with gr.Column(scale=1, min_width=320):
                prompt = gr.Textbox(
                    value="", label="Prompt", placeholder="mossy cobblestone path", lines=2, max_lines=4, elem_id="prompt"
                )
                image = gr.Image(
                    label="…or an image prompt (upload or paste a photo; clear the text prompt to use it)",
                    type="filepath",
                    sources=["upload", "clipboard"],
                    height=180,
                    elem_id="image-prompt",
                )
                with gr.Row():
                    resolution = gr.Dropdown(
                        [str(s) for s in sizes], value=str(default_size), label="Resolution (px)",
                        allow_custom_value=True, elem_id="resolution",
                    )  # fmt: skip
                    variations = gr.Slider(1, limits.max_variations, value=1, step=1, label="Variations")
                tileable = gr.Checkbox(value=True, label="Tileable (seamless edges)")
                model = gr.Dropdown(
                    choices, value=choices[0][1] if choices else None, label="Model", elem_id="model",
                    info=None if choices else "no model found",
                )  # fmt: skip
                variant = gr.Radio(
                    [("Fast (4 steps)", "student"), ("Full (50 steps, slower)", "teacher")],
                    value=engine.default_variant(), label="Model speed", elem_id="variant",
                    info="the fast student model, or the full model it was distilled from",
                )  # fmt: skip
                generate = gr.Button("Generate", variant="primary", elem_id="generate")
                status = gr.Markdown(no_model_note, elem_id="status")
                with gr.Accordion("More settings", open=False):
                    negative_prompt = gr.Textbox(value="", label="Negative prompt", placeholder="what to avoid", lines=1)
                    steps = gr.Slider(
                        1, limits.max_steps, value=engine.default_steps(), step=1, label="Steps",
                        info="4 for the fast student model; more for the full model",
                    )  # fmt: skip
                    guidance = gr.Slider(0, min(15.0, limits.max_guidance), value=DEFAULT_GUIDANCE, step=0.5, label="Guidance")
                    with gr.Row():
                        seed = gr.Number(value=0, precision=0, label="Seed (when not random)", minimum=0, elem_id="seed")
                        random_seed = gr.Checkbox(value=True, label="Random seed")
                    model_folder = gr.Textbox(
                        value="",
                        label="Model folder on this computer (overrides the list)",
                        placeholder="/path/to/model (a folder with model_index.json)",
                        visible=engine.allow_model_folders,
                    )
            # ---- results ----
            with gr.Column(scale=2, min_width=480):
                maps = gr.Gallery(
                    label="Maps", columns=5, rows=1, height=220, format="png", object_fit="contain",
                    allow_preview=True, elem_id="maps",
                )  # fmt: skip
                with gr.Row():
                    with gr.Column():
                        tiled = gr.Image(label="Tiled 2×2", format="png", interactive=False, elem_id="tiled")
                        tiled_map = gr.Dropdown(
                            [(MAP_LABELS[m], m) for m in MAP_NAMES], value="basecolor", label="Map to tile",
                            elem_id="tiled-map",
                        )
                        seam = gr.Markdown(elem_id="seam")
                    with gr.Column():
                        preview = gr.Image(
                            label="Preview: sphere and plane", format="png", interactive=False, elem_id="preview"
                        )
                        light_azimuth = gr.Slider(
                            0, 360, value=DEFAULT_LIGHT[0], step=5, label="Light direction (°)", elem_id="light-azimuth"
                        )
                        light_elevation = gr.Slider(
                            5, 90, value=DEFAULT_LIGHT[1], step=1, label="Light height (°)", elem_id="light-elevation"
                        )
                with gr.Row():
                    with gr.Column():
                        model3d = gr.Model3D(
                            label="3D view (drag to orbit)", height=360, clear_color=(0.16, 0.16, 0.18, 1.0),
                            camera_position=(90, 50, None),
                            elem_id="model3d",
                        )  # fmt: skip
                        shape = gr.Radio(list(GLB_SHAPES), value="plane", label="3D shape")
                    with gr.Column():
                        naming = gr.Dropdown(
                            [(NAMING_LABELS[k], k) for k in NAMING_PRESETS], value="plain", label="File naming"
                        )
                        normal_convention = gr.Radio(
                            [(label, k) for k, label in NORMAL_LABELS.items()], value="opengl", label="Normal map"
                        )
                        bit_depth = gr.Radio([("16-bit", 16), ("8-bit", 8)], value=16, label="Height and normal PNGs")
                        zip_file = gr.File(label="Material folder (.zip)", interactive=False, elem_id="zip")
                        glb_file = gr.File(label="3D model (.glb)", interactive=False, elem_id="glb")
                history_gallery = gr.Gallery(
                    label="This session's materials (click one to show it again)", columns=8, rows=1, height=160,
                    format="png", allow_preview=False, fit_columns=False, elem_id="history",
                )  # fmt: skip

        request_fields = {
            "prompt": prompt, "image": image, "negative_prompt": negative_prompt, "steps": steps,
            "guidance": guidance, "seed": seed, "random_seed": random_seed, "tileable": tileable,
            "resolution": resolution, "variations": variations, "model": model, "model_folder": model_folder, "variant": variant,
            "naming": naming, "normal_convention": normal_convention, "bit_depth": bit_depth,
        }  # fmt: skip
        view_fields = {
            "tiled_map": tiled_map, "light_azimuth": light_azimuth, "light_elevation": light_elevation, "shape": shape,
            "naming": naming, "normal_convention": normal_convention, "bit_depth": bit_depth,
        }  # fmt: skip
        shown = [maps, tiled, seam, preview, model3d, zip_file, glb_file]

        def views(material: Material, view: dict[str, Any]) -> dict:
            """Every picture and file of one material, as the view settings ask."""
            light = light_direction(float(view["light_azimuth"]), float(view["light_elevation"]))
            labelled = map_images(material, view["normal_convention"])
            files = as_files(
                {name: image for name, (image, _) in zip(MAP_NAMES, labelled)}
                | {"tiled": tiled_view(material, view["tiled_map"], min_side=DISPLAY_SIDE),
                   "preview": preview_image(material, light)}
            )  # fmt: skip
            return {
                maps: [(files[name], label) for name, (_, label) in zip(MAP_NAMES, labelled)],
                tiled: files["tiled"],
                seam: seam_summary(seam_of(material), view["tiled_map"]),
                preview: files["preview"],
                **glb_views(material, view["shape"]),
                zip_file: str(zip_material(
                    material, view["naming"], view["normal_convention"], int(view["bit_depth"]), out_dir=out_dir
                )),
            }  # fmt: skip

        def as_files(pictures: dict[str, Any]) -> dict[str, str]:
            """The pictures as PNG files for gradio to serve (`save_pictures` says why not the images themselves)."""
            return {key: str(path) for key, path in save_pictures(pictures, out_dir).items()}

        def glb_views(material: Material, shape_name: str) -> dict:
            path = str(glb_for(material, shape_name, out_dir=out_dir))
            return {model3d: path, glb_file: path}

        def on_generate(
            history_list: list,
            image: Any = None,  # the fields that may be empty are named, so API clients may leave them out
            model: Any = None,
            progress: gr.Progress = gr.Progress(),
            **form: Any,
        ) -> dict:
            with user_errors("generate"):
                request = request_from_form(form | {"image": image, "model": model})
                prune_outputs(out_dir, OUTPUT_SECONDS)
                progress(0.0, desc="Loading the model")

                def report(done: int, total: int) -> None:
                    progress((done, total), desc="Denoising", unit="steps")

                result = engine.generate(request, report)
                progress(1.0, desc="Rendering the preview and files")
                for material, seam_scores in zip(result.materials, result.seam):
                    material.metadata["seam"] = seam_scores
                first = result.materials[0]
                new_history = (list(result.materials) + list(history_list or []))[:HISTORY_SIZE]
                size = f"{result.request.width}×{result.request.height}"
                count = f"{len(result.materials)} materials" if len(result.materials) > 1 else "1 material"
                return views(first, form) | {
                    current: first,
                    history: new_history,
                    history_gallery: list(zip(
                        as_files({f"history_{k}": thumbnail(m) for k, m in enumerate(new_history)}).values(),
                        map(history_caption, new_history),
                    )),  # fmt: skip
                    seed: result.seed,
                    status: f"Made {count} ({size}, {result.request.steps} steps) in {result.seconds:.1f} s · "
                    f"seed **{result.seed}**",
                }

        def on_select(history_list: list, evt: gr.SelectData, **view: Any) -> dict:
            with user_errors("show that material"):
                if not history_list or evt.index is None or not 0 <= int(evt.index) < len(history_list):
                    raise ValueError("that material is no longer in this session's history")
                material = history_list[int(evt.index)]
                return views(material, view) | {
                    current: material,
                    seed: material.metadata.get("seed"),
                    status: f"Showing {history_caption(material)}",
                }

        def on_tiled_map(material: Material | None, map_name: str) -> dict:
            if material is None:
                return {tiled: None, seam: ""}
            with user_errors("tile the map"):
                return {
                    tiled: as_files({"tiled": tiled_view(material, map_name, min_side=DISPLAY_SIDE)})["tiled"],
                    seam: seam_summary(seam_of(material), map_name),
                }

        def on_light(material: Material | None, azimuth: float, elevation: float) -> Any:
            if material is None:
                return None
            with user_errors("render the preview"):
                picture = preview_image(material, light_direction(float(azimuth), float(elevation)))
                return as_files({"preview": picture})["preview"]

        def on_download_settings(material: Material | None, naming_key: str, convention: str, depth: int) -> Any:
            if material is None:
                return None
            with user_errors("write the zip"):
                return str(zip_material(material, naming_key, convention, int(depth), out_dir=out_dir))

        def on_shape(material: Material | None, shape_name: str) -> dict:
            if material is None:
                return {model3d: None, glb_file: None}
            with user_errors("write the .glb"):
                return glb_views(material, shape_name)

        def on_model(model_path: str | None, folder: str) -> dict:
            chosen = (folder or "").strip() or model_path
            size = engine.native_size(chosen)
            default_variant = engine.default_variant(chosen)
            updates = {steps: gr.update(value=engine.default_steps(chosen, default_variant)), variant: default_variant}
            if size is not None:
                updates[resolution] = gr.update(value=str(min(default_output_size(size), limits.max_resolution)))
            return updates

        def on_variant(model_path: str | None, folder: str, chosen_variant: str) -> dict:
            return gr.update(value=engine.default_steps((folder or "").strip() or model_path, chosen_variant))

        gr.on(
            [generate.click, prompt.submit],
            on_generate,
            inputs_kwargs=request_fields | view_fields | {"history_list": history},
            outputs=[*shown, current, history, history_gallery, seed, status],
            api_name="generate",
            preprocess=False,  # request_from_form reads the raw values; GenerationRequest.validate checks them
            concurrency_limit=1,
            concurrency_id="generate",
        )
        history_gallery.select(
            on_select,
            inputs_kwargs=view_fields | {"history_list": history},
            outputs=[*shown, current, seed, status],
            api_visibility="private",
        )
        tiled_map.change(on_tiled_map, [current, tiled_map], [tiled, seam], api_visibility="private")
        light_inputs = [current, light_azimuth, light_elevation]
        light_azimuth.release(on_light, light_inputs, preview, api_visibility="private")
        light_elevation.release(on_light, light_inputs, preview, api_visibility="private")
        download_inputs = [current, naming, normal_convention, bit_depth]
        for field in (naming, normal_convention, bit_depth):
            field.change(on_download_settings, download_inputs, zip_file, api_visibility="private")
        shape.change(on_shape, [current, shape], [model3d, glb_file], api_visibility="private")
        model.change(on_model, [model, model_folder], [steps, resolution, variant], api_visibility="private")
        model_folder.blur(on_model, [model, model_folder], [steps, resolution, variant], api_visibility="private")
        variant.input(on_variant, [model, model_folder, variant], steps, api_visibility="private")
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
