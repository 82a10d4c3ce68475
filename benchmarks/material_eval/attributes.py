"""Colour, metal and gloss words against a material's maps.

Colour: the material's mean basecolor (sRGB, all pixels: a brick wall's colour includes its mortar, as a viewer sees
it from afar) converted to hue (degrees), saturation and value (HSV, max-based), then tested against a rule per
colour name. The ranges are read off the procedural colour tables (stablematerials/procedural/*: BRICK_COLORS,
TILE_COLORS, PAINT_COLORS, FABRIC_COLORS, ...), whose swatches in HSV are:

  white  V 0.84-0.92, S <= 0.09  (white bricks, tiles, paint, plaster, fabric, sand, gravel; carrara marble)
  cream  hue 38-42, S 0.17-0.27, V 0.80-0.89  (cream tiles, plaster, leather; beige fabric; crema marble)
  grey   S <= 0.11, V 0.37-0.66  (grey bricks, tiles, paint, concrete, plaster, fabric, stone, gravel, bark, soil)
  black  V 0.11-0.14 (tiles, paint, fabric, leather, nero marble), 0.23-0.29 (charcoal bricks, basalt, volcanic sand)
  red    hue 0-17, S 0.48-0.78  (red bricks 11, red paint 4, red fabric 0, oxblood 0, red stone/gravel 13-16)
  brown  hue 20-26, S 0.45-0.63, V 0.36-0.43  (brown bricks, leather, bark, soil; walnut)
  orange hue 20-28, S 0.62-0.85, V 0.65-0.78  (orange bricks and paint, rust's light end; terracotta 17-20)
  yellow hue 38-44, S 0.46-0.81, V 0.76-0.85  (yellow bricks and paint, mustard fabric; gold metal 40)
  green  hue 123-151, S 0.43-0.49  (green tiles, paint, fabric; verde marble)
  blue   hue 207-226, S 0.22-0.67  (blue tiles and paint, navy and indigo fabric, light blue plaster)
  pink   hue 348-16, S 0.21-0.28, V 0.84-0.85  (pink tiles, plaster, fabric; rosa marble)

Each rule widens those ranges by a margin for mortar, grout, veins and grime mixed into the mean (a neutral
mortar keeps the hue and lowers the saturation), while keeping neighbours apart: red ends at hue 19 because brown
bricks sit at 20; orange needs S >= 0.5 and V >= 0.45 where brown has V <= 0.6 (the overlap holds dark orange,
which is also brown: rust, whose mean is hue 22-24, S 0.60-0.66, V 0.49-0.56 on heavily rusted plates); cream needs some saturation (S >= 0.08) where white allows at most 0.15 (light
materials in 0.08-0.15 pass both). Names that overlap in the tables (terracotta is red and orange) may pass both.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

METAL_THRESHOLD = 0.5  # mean metallic: bare-metal families are 1 everywhere, non-metal families 0
# Mean roughness of procedural materials by finish (12 seeds each, 128 px): glossy or polished 0.06-0.42 (glossy
# tiles 0.20-0.42, glossy wood 0.19-0.35, glossy leather 0.26-0.33, polished marble 0.12-0.18, polished metal
# 0.06-0.23, glossy paint 0.25-0.42); satin 0.40-0.55; matte 0.56-0.77 (matte tiles 0.64-0.74, wood 0.62-0.69,
# leather 0.70-0.77, dull paint 0.56-0.67); rough dielectrics 0.6-0.95 (concrete, plaster, bricks, bark).
GLOSSY_MAX = 0.45  # above every glossy procedural material (0.42), below every matte one (0.56)
MATTE_MIN = 0.55  # the band between is satin's (0.40-0.55, overlapping both ends): no prompt asks for satin

METAL_WORDS = ("metal", "not metal")
GLOSS_WORDS = ("glossy", "matte")


@dataclass(frozen=True)
class ColourRule:
    """A colour name as ranges of hue (degrees, inclusive; None: any hue), HSV saturation and value."""

    hues: tuple[tuple[float, float], ...] | None
    saturation: tuple[float, float]
    value: tuple[float, float]

    def holds(self, hue: float, saturation: float, value: float) -> bool:
        in_hue = self.hues is None or any(lo <= hue <= hi for lo, hi in self.hues)
        return in_hue and _within(saturation, self.saturation) and _within(value, self.value)


COLOUR_RULES: dict[str, ColourRule] = {
    "white": ColourRule(None, (0.0, 0.15), (0.70, 1.0)),
    "cream": ColourRule(((25.0, 60.0),), (0.08, 0.35), (0.70, 1.0)),
    "grey": ColourRule(None, (0.0, 0.15), (0.25, 0.75)),
    "black": ColourRule(None, (0.0, 1.0), (0.0, 0.30)),
    "red": ColourRule(((340.0, 360.0), (0.0, 19.0)), (0.40, 1.0), (0.20, 1.0)),
    "brown": ColourRule(((10.0, 45.0),), (0.25, 1.0), (0.12, 0.60)),
    "orange": ColourRule(((12.0, 36.0),), (0.50, 1.0), (0.45, 1.0)),
    "yellow": ColourRule(((36.0, 65.0),), (0.35, 1.0), (0.55, 1.0)),
    "green": ColourRule(((75.0, 170.0),), (0.20, 1.0), (0.12, 1.0)),
    "blue": ColourRule(((190.0, 260.0),), (0.15, 1.0), (0.12, 1.0)),
    "pink": ColourRule(((330.0, 360.0), (0.0, 25.0)), (0.12, 0.45), (0.60, 1.0)),
}
COLOURS: tuple[str, ...] = tuple(COLOUR_RULES)


def _within(x: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= x <= bounds[1]


def mean_colour(basecolor: np.ndarray) -> np.ndarray:
    """Mean sRGB colour (3,) of a basecolor map (H, W, 3)."""
    return np.asarray(basecolor, np.float64).reshape(-1, 3).mean(axis=0)


def hsv(rgb: np.ndarray) -> tuple[float, float, float]:
    """(hue in degrees [0, 360), saturation, value) of one sRGB colour in [0, 1]."""
    h, s, v = colorsys.rgb_to_hsv(*(float(c) for c in np.clip(rgb, 0.0, 1.0)))
    return 360.0 * h, s, v


def colour_names_of(hue: float, saturation: float, value: float) -> list[str]:
    """Every colour name whose rule holds for an HSV colour."""
    return [name for name, rule in COLOUR_RULES.items() if rule.holds(hue, saturation, value)]


def colour_names(basecolor: np.ndarray) -> list[str]:
    """Every colour name whose rule the mean basecolor satisfies (for the report: what the material looks like)."""
    return colour_names_of(*hsv(mean_colour(basecolor)))


def colour_matches(name: str, basecolor: np.ndarray) -> bool:
    """Whether the material's mean basecolor (H, W, 3) is the colour `name` (one of COLOURS)."""
    if name not in COLOUR_RULES:
        raise ValueError(f"unknown colour name {name!r}; expected one of {', '.join(COLOURS)}")
    return name in colour_names(basecolor)


def metal_matches(expected: str, mean_metallic: float) -> bool:
    """'metal': mean metallic >= METAL_THRESHOLD; 'not metal': below it."""
    if expected not in METAL_WORDS:
        raise ValueError(f"metal expectation must be one of {METAL_WORDS}, got {expected!r}")
    return (mean_metallic >= METAL_THRESHOLD) == (expected == "metal")


def gloss_matches(expected: str, mean_roughness: float) -> bool:
    """'glossy': mean roughness <= GLOSSY_MAX; 'matte': >= MATTE_MIN (satin in between is neither)."""
    if expected not in GLOSS_WORDS:
        raise ValueError(f"gloss expectation must be one of {GLOSS_WORDS}, got {expected!r}")
    return mean_roughness <= GLOSSY_MAX if expected == "glossy" else mean_roughness >= MATTE_MIN
