"""``demo:faces``: procedural faces drawn with PIL, whose Action Units are known by construction.

Each row is one face showing one EMFACS prototype emotion (``rewards/data/action_units.yaml``:
happiness 6+12, sadness 1+4+15, surprise 1+2+5+26, fear 1+2+4+5+7+20+26, anger 4+5+7+23,
disgust 9+15+16), drawn on a random identity (face shape, skin tone, hair, eye spacing and
size, brow weight, nose, mouth width, lip colour) with a random intensity, position, tilt,
background and pixel noise. A third of the rows show a variant: one prototype AU missing, or an
extra AU that fits the face (AU10 upper lip raiser, AU25 lips part, AU7, AU4, AU26...); the row's
``aus`` list says exactly what is drawn, so an AU reward carries information beyond the label.
Each row's ``rationale`` names the visible cue of each AU, in Facial-R1's style ("brows lowered and
drawn together (AU4), lip corners pulled down (AU15)."): the reasoning SFT teaches, short enough for
a CPU (about 40 tokens with the tags, against 90 for the generic AU-by-AU facial reasoning).

What each AU changes (the drawing code below, region by region):

- brows: AU1 raises the inner ends, AU2 the outer ends, AU4 lowers the brows, draws them
  together and adds vertical furrows between them;
- lids: AU5 raises the upper lids (white shows above the iris), AU7 tightens and straightens the
  lower lids, AU6 pushes the lower lids up, bunches the cheeks and adds crow's feet;
- nose: AU9 wrinkles the bridge and lifts and flares the nostrils; AU10 deepens the nasolabial
  folds;
- mouth: AU12 pulls the corners up and out, AU15 down, AU20 stretches them sideways, AU23 thins
  and narrows the lips, AU10 raises the upper lip over the upper teeth, AU16 pulls the lower lip
  down over the lower teeth, AU25 parts the lips;
- jaw: AU26 drops the jaw (an open mouth and a longer chin).

Rows: 60 identities, split by identity into train (40; two rows per identity and emotion),
validation (8) and test (12; one row each): 480 / 48 / 72 rows. The images are generated once,
deterministically, into ``$AFFECT_RL_CACHE/data/faces-v<VERSION>/`` (PNG files and
``rows.jsonl``) on first use; nothing is stored in the package.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from affect_rl.files import staged_folder
from rewards.action_units import au_table

VERSION = 2
IMAGE_SIZE = 96  # pixels on a side, as saved
_SUPERSAMPLE = 4  # drawn at 4x, then downsampled: smooth edges at 96 px
EMOTIONS = ("happiness", "sadness", "surprise", "fear", "anger", "disgust")
DRAWN_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 15, 16, 20, 23, 25, 26)
# Extra AUs that fit each emotion's face without contradicting a drawn one.
EXTRA_AUS = {"happiness": (25, 26), "sadness": (7, 25), "surprise": (25,), "fear": (10,),
             "anger": (10, 25), "disgust": (4, 7, 10)}  # fmt: skip
# What each AU looks like here, in the words of Facial-R1's targets ("eyebrows pulled together (AU4)").
CUES = {1: "inner brows raised", 2: "outer brows raised", 4: "brows lowered and drawn together", 5: "upper lids raised",
        6: "cheeks raised", 7: "lower lids tightened", 9: "nose wrinkled", 10: "upper lip raised",
        12: "lip corners pulled up", 15: "lip corners pulled down", 16: "lower lip pulled down",
        20: "lips stretched sideways", 23: "lips tightened", 25: "lips parted", 26: "jaw dropped"}  # fmt: skip
IDENTITIES = {"train": 40, "validation": 8, "test": 12}
ROWS_PER_EMOTION = {"train": 2, "validation": 1, "test": 1}
VARIANT_SHARE = 1 / 3  # rows with a missing or an extra AU

SKIN_TONES = ((255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 134, 96), (161, 102, 68),
              (118, 74, 48), (233, 200, 178), (205, 160, 120))  # fmt: skip
HAIR_COLOURS = ((30, 24, 20), (80, 50, 30), (150, 110, 60), (200, 170, 110), (120, 120, 120), (60, 30, 20))


def prototypes() -> dict[str, list[int]]:
    """The EMFACS prototype of each drawn emotion, from the project's AU table."""
    table = au_table()["emfacs_prototypes"]
    return {emotion: [int(au) for au in table[emotion]] for emotion in EMOTIONS}


# ---- who is drawn, where, and how strongly ----


@dataclass(frozen=True)
class Identity:
    """What stays the same across one person's faces (all lengths relative to the face size)."""

    aspect: float  # face height / width
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_height: float
    eye_spacing: float
    eye_size: float
    iris: tuple[int, int, int]
    brow_weight: float
    nose_length: float
    mouth_width: float
    lip_thickness: float
    lip: tuple[int, int, int]


@dataclass(frozen=True)
class Pose:
    """Where and how the face sits in the picture."""

    centre_x: float = 0.5  # fractions of the canvas
    centre_y: float = 0.5
    scale: float = 0.29  # face half-width / canvas side
    tilt: float = 0.0  # degrees
    background: tuple[int, int, int] = (180, 190, 200)
    noise: float = 0.0  # std of the Gaussian pixel noise (0-255 scale)


@dataclass(frozen=True)
class Expression:
    """The AUs shown and their intensities (0-1, 1 = the full displacement)."""

    intensity: dict[int, float] = field(default_factory=dict)

    def __call__(self, au: int) -> float:
        return self.intensity.get(au, 0.0)


def random_identity(rng: random.Random) -> Identity:
    def tone(base, spread):
        return tuple(int(min(255, max(0, c + rng.uniform(-spread, spread)))) for c in base)

    skin = tone(rng.choice(SKIN_TONES), 10)
    return Identity(
        aspect=rng.uniform(1.15, 1.4), skin=skin, hair=tone(rng.choice(HAIR_COLOURS), 15),
        hair_height=rng.uniform(0.15, 0.45), eye_spacing=rng.uniform(0.36, 0.46), eye_size=rng.uniform(0.85, 1.15),
        iris=tone(rng.choice(((70, 45, 25), (60, 90, 140), (70, 110, 70), (40, 30, 25))), 15),
        brow_weight=rng.uniform(0.8, 1.3), nose_length=rng.uniform(0.85, 1.15), mouth_width=rng.uniform(0.28, 0.38),
        lip_thickness=rng.uniform(0.8, 1.2), lip=tone((170, 80, 80), 25),
    )  # fmt: skip


def random_pose(rng: random.Random) -> Pose:
    """A random background, a shift of up to 2.4 px, a size within +-3.5%, a tilt within 2.5 degrees
    and pixel noise. With 2.5 times these (6 px, 9%, 7 degrees) the built-in VLM's vision encoder,
    trained from scratch with a classification head of its own on 480 training faces, stayed near
    0.4 held-out accuracy after 300 steps of 8 faces; with these it reaches 0.48 after 120 steps and
    0.73 after 180 (``python bench/faces_vision.py``)."""
    shade = rng.randint(60, 230)
    background = tuple(int(min(255, max(0, shade + rng.uniform(-40, 40)))) for _ in range(3))
    return Pose(centre_x=rng.uniform(0.475, 0.525), centre_y=rng.uniform(0.49, 0.51), scale=rng.uniform(0.275, 0.295),
                tilt=rng.uniform(-2.5, 2.5), background=background, noise=rng.uniform(2, 5))  # fmt: skip


def random_expression(aus: list[int], rng: random.Random) -> Expression:
    """Every AU at the row's intensity (0.6-1), give or take 15% each."""
    level = rng.uniform(0.6, 1.0)
    return Expression({au: min(1.0, level * rng.uniform(0.85, 1.15)) for au in aus})


# ---- drawing ----


class _Canvas:
    """A supersampled drawing surface in face coordinates: (x, y) in half-widths from the face centre."""

    def __init__(self, identity: Identity, pose: Pose):
        self.size = IMAGE_SIZE * _SUPERSAMPLE
        self.image = Image.new("RGB", (self.size, self.size), pose.background)
        self.draw = ImageDraw.Draw(self.image)
        self.unit = pose.scale * self.size
        self.cx, self.cy = pose.centre_x * self.size, pose.centre_y * self.size
        self.identity = identity

    def xy(self, x: float, y: float) -> tuple[float, float]:
        return self.cx + x * self.unit, self.cy + y * self.unit

    def width(self, w: float) -> int:
        return max(1, round(w * self.unit))

    def ellipse(self, x, y, rx, ry, fill=None, outline=None, width=1):
        (x0, y0), (x1, y1) = self.xy(x - rx, y - ry), self.xy(x + rx, y + ry)
        self.draw.ellipse((x0, y0, x1, y1), fill=fill, outline=outline, width=width)

    def line(self, points, fill, width: float):
        self.draw.line([self.xy(*p) for p in points], fill=fill, width=self.width(width), joint="curve")

    def polygon(self, points, fill):
        self.draw.polygon([self.xy(*p) for p in points], fill=fill)


def _curve(start, control, end, steps: int = 16) -> list[tuple[float, float]]:
    """Points of the quadratic Bezier curve start -> end pulled towards control."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    points = (1 - t) ** 2 * np.array(start) + 2 * (1 - t) * t * np.array(control) + t**2 * np.array(end)
    return [tuple(p) for p in points]


def _shade(colour, factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, c * factor))) for c in colour)


def _head(c: _Canvas, face: Expression) -> None:
    ident = c.identity
    chin = ident.aspect + 0.18 * face(26)  # AU26: the jaw drops, the chin moves down
    c.ellipse(-1.0, 0.0, 0.12, 0.22, fill=_shade(ident.skin, 0.92))  # ears
    c.ellipse(1.0, 0.0, 0.12, 0.22, fill=_shade(ident.skin, 0.92))
    upper = [(np.cos(a), -ident.aspect * np.sin(a)) for a in np.linspace(0, np.pi, 24)]
    lower = [(-np.cos(a), chin * np.sin(a)) for a in np.linspace(0, np.pi, 24)]
    c.polygon(upper + lower, fill=ident.skin)
    hair_top = [(np.cos(a) * 1.04, -ident.aspect * 1.04 * np.sin(a)) for a in np.linspace(0, np.pi, 24)]
    hair_line = -ident.aspect * (1 - ident.hair_height)
    c.polygon(hair_top + [(-1.02, -0.15), (-0.7, hair_line), (0.7, hair_line), (1.02, -0.15)], fill=ident.hair)


def _brows(c: _Canvas, face: Expression) -> None:
    ident = c.identity
    for side in (-1, 1):
        centre = side * ident.eye_spacing
        inner = [centre - side * 0.2, -0.42 - 0.26 * face(1) + 0.14 * face(4)]
        outer = [centre + side * 0.22, -0.4 - 0.26 * face(2) + 0.06 * face(4)]
        inner[0] -= side * 0.08 * face(4)  # AU4 draws the brows together
        middle = ((inner[0] + outer[0]) / 2, min(inner[1], outer[1]) - 0.05)
        c.line(_curve(inner, middle, outer, 8), fill=_shade(ident.hair, 0.8), width=0.07 * ident.brow_weight)
    if face(4):  # vertical furrows between the brows
        for x in (-0.05, 0.05):
            c.line([(x, -0.38), (x, -0.22)], fill=_shade(ident.skin, 0.6), width=0.025 * face(4) + 0.01)


def _eyes(c: _Canvas, face: Expression) -> None:
    ident = c.identity
    half_width, height = 0.17 * ident.eye_size, 0.09 * ident.eye_size
    upper = height * (1 + 0.8 * face(5) - 0.3 * face(7))
    lower = height * (0.8 - 0.45 * face(7) - 0.4 * face(6))
    for side in (-1, 1):
        x, y = side * ident.eye_spacing, -0.22
        outline = _curve((x - half_width, y), (x, y - 2 * upper), (x + half_width, y))
        outline += _curve((x + half_width, y), (x, y + 2 * max(lower, 0.01)), (x - half_width, y))
        mask = Image.new("L", c.image.size, 0)
        ImageDraw.Draw(mask).polygon([c.xy(*p) for p in outline], fill=255)
        eye = Image.new("RGB", c.image.size, (245, 245, 240))
        eye_draw = ImageDraw.Draw(eye)
        radius = 0.075 * ident.eye_size
        for r, colour in ((radius, ident.iris), (radius * 0.45, (15, 15, 15))):
            (x0, y0), (x1, y1) = c.xy(x - r, y - r + 0.01), c.xy(x + r, y + r + 0.01)
            eye_draw.ellipse((x0, y0, x1, y1), fill=colour)
        c.image.paste(eye, (0, 0), mask)
        c.line(outline[:16], fill=(40, 30, 30), width=0.025)  # upper lid
        if face(7):  # a tightened lower lid is straight and raised
            c.line([(x - half_width, y), (x + half_width, y + 0.3 * lower)], fill=_shade(ident.skin, 0.7), width=0.02)
        if face(6):  # cheeks pushed up, crow's feet at the outer corners
            c.ellipse(x + side * 0.05, y + 0.28, 0.2, 0.1 + 0.04 * face(6), fill=_shade(ident.skin, 0.9))
            for dy in (-0.05, 0.0, 0.05):
                start = (x + side * (half_width + 0.03), y + dy)
                c.line([start, (start[0] + side * 0.1, y + 2.2 * dy)], fill=_shade(ident.skin, 0.65), width=0.015)


def _nose(c: _Canvas, face: Expression) -> None:
    ident = c.identity
    tip = 0.22 * ident.nose_length - 0.06 * face(9)
    line_colour = _shade(ident.skin, 0.7)
    c.line([(0.0, -0.15), (0.04, tip)], fill=line_colour, width=0.02)
    flare = 0.07 * (1 + 0.5 * face(9))
    for side in (-1, 1):
        c.ellipse(side * flare, tip + 0.02, 0.045, 0.025, fill=_shade(ident.skin, 0.45))
    if face(9):  # wrinkles across the bridge
        for dy in (-0.1, -0.04, 0.02):
            c.line([(-0.07, dy), (0.07, dy - 0.01)], fill=_shade(ident.skin, 0.6), width=0.012 + 0.012 * face(9))
    if face(10):  # deeper nasolabial folds
        for side in (-1, 1):
            c.line(_curve((side * 0.12, tip), (side * 0.3, tip + 0.2), (side * 0.32, tip + 0.42)),
                   fill=_shade(ident.skin, 0.62), width=0.015 + 0.015 * face(10))  # fmt: skip


def _mouth(c: _Canvas, face: Expression) -> None:
    ident = c.identity
    y = 0.48 + 0.06 * face(26)
    half_width = ident.mouth_width * (1 + 0.15 * face(12) + 0.45 * face(20) - 0.25 * face(23))
    corner_lift = 0.14 * face(12) - 0.18 * face(15) - 0.04 * face(20)
    thickness = 0.06 * ident.lip_thickness * (1 - 0.7 * face(23))
    gap_up = 0.03 * face(25) + 0.1 * face(26) + 0.07 * face(10)
    gap_down = 0.03 * face(25) + 0.14 * face(26) + 0.07 * face(16)
    left, right = (-half_width, y - corner_lift), (half_width, y - corner_lift)
    # The lip line sags at the centre when the corners rise, and bows up when they fall.
    centre = (0.0, y + corner_lift * (0.6 if corner_lift > 0 else 1.0))
    top_edge = _curve(left, (centre[0], centre[1] - 2 * gap_up), right)
    bottom_edge = _curve(left, (centre[0], centre[1] + 2 * gap_down), right)
    if gap_up or gap_down:
        c.polygon(top_edge + bottom_edge[::-1], fill=(50, 20, 25))
        if face(10):  # upper teeth under the raised upper lip
            teeth = _curve(left, (0.0, centre[1] - 2 * gap_up + 0.12 * face(10)), right)
            c.polygon(top_edge + teeth[::-1], fill=(240, 240, 230))
        if face(16):  # lower teeth above the lowered lower lip
            teeth = _curve(left, (0.0, centre[1] + 2 * gap_down - 0.12 * face(16)), right)
            c.polygon(teeth + bottom_edge[::-1], fill=(240, 240, 230))
    upper_lip = _curve(left, (0.0, centre[1] - 2 * gap_up - 2 * thickness), right)
    lower_lip = _curve(left, (0.0, centre[1] + 2 * gap_down + 2.4 * thickness), right)
    c.polygon(upper_lip + top_edge[::-1], fill=ident.lip)
    c.polygon(bottom_edge + lower_lip[::-1], fill=_shade(ident.lip, 1.08))
    c.line(top_edge if not (gap_up or gap_down) else [], fill=_shade(ident.lip, 0.5), width=0.015)


def draw_face(identity: Identity, expression: Expression, pose: Pose = Pose(), seed: int = 0) -> Image.Image:
    """One face as a ``IMAGE_SIZE`` x ``IMAGE_SIZE`` RGB image; deterministic for the same arguments."""
    canvas = _Canvas(identity, pose)
    for part in (_head, _brows, _eyes, _nose, _mouth):
        part(canvas, expression)
    image = canvas.image.rotate(pose.tilt, resample=Image.BICUBIC, fillcolor=pose.background)
    image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS)
    if pose.noise:
        pixels = np.asarray(image, dtype=np.float32)
        pixels += np.random.default_rng(seed).normal(0.0, pose.noise, pixels.shape)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.SMOOTH) if pose.noise > 8 else image


def region_boxes(identity: Identity, pose: Pose = Pose()) -> dict[str, tuple[int, int, int, int]]:
    """Pixel boxes (left, top, right, bottom) of the brow, eye, nose and mouth regions of an untilted face."""
    scale = pose.scale * IMAGE_SIZE

    def box(x0, y0, x1, y1):
        cx, cy = pose.centre_x * IMAGE_SIZE, pose.centre_y * IMAGE_SIZE
        return (int(cx + x0 * scale), int(cy + y0 * scale), int(cx + x1 * scale) + 1, int(cy + y1 * scale) + 1)

    spread = identity.eye_spacing + 0.3
    return {"brows": box(-spread, -0.7, spread, -0.33), "eyes": box(-spread, -0.36, spread, 0.0),
            "nose": box(-0.15, -0.15, 0.15, 0.3), "mouth": box(-0.7, 0.3, 0.7, 1.0)}  # fmt: skip


# ---- the data set ----


def row_aus(emotion: str, rng: random.Random) -> list[int]:
    """The prototype's AUs, or (a third of the time) a variant with one AU missing or one extra."""
    aus = prototypes()[emotion]
    if rng.random() >= VARIANT_SHARE:
        return sorted(aus)
    if rng.random() < 0.5 and len(aus) > 2:
        return sorted(set(aus) - {rng.choice(aus)})
    return sorted(set(aus) | {rng.choice(EXTRA_AUS[emotion])})


def rationale(aus: list[int]) -> str:
    """What the face shows, AU by AU: the reasoning SFT teaches.

    >>> rationale([1, 4, 15])
    'Inner brows raised (AU1), brows lowered and drawn together (AU4), lip corners pulled down (AU15).'
    """
    text = ", ".join(f"{CUES[au]} (AU{au})" for au in aus)
    return text[0].upper() + text[1:] + "."


def _identity_splits(seed: int) -> dict[int, str]:
    numbers = list(range(sum(IDENTITIES.values())))
    random.Random(seed).shuffle(numbers)
    splits, start = {}, 0
    for split, count in IDENTITIES.items():
        splits.update({number: split for number in numbers[start : start + count]})
        start += count
    return splits


def generate(folder: Path, seed: int = 0) -> list[dict]:
    """Draw every face into ``folder/images`` and return the rows (image paths relative to ``folder``)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for number, split in sorted(_identity_splits(seed).items()):
        identity = random_identity(random.Random(f"identity-{seed}-{number}"))
        for emotion in EMOTIONS:
            for repeat in range(ROWS_PER_EMOTION[split]):
                name = f"face-{number:03d}-{emotion}-{repeat}"
                rng = random.Random(f"{seed}-{name}")
                aus = row_aus(emotion, rng)
                image = draw_face(identity, random_expression(aus, rng), random_pose(rng), seed=rng.randrange(2**32))
                image.save(folder / "images" / f"{name}.png")
                rows.append({"id": name, "image": f"images/{name}.png", "aus": aus, "emotion": emotion,
                             "rationale": rationale(aus), "identity": f"person-{number:03d}", "split": split})  # fmt: skip
    return rows


def faces_file(cache: Path) -> Path:
    """``rows.jsonl`` of the face set under ``cache``, generated once (atomically) on first use."""
    target = cache / "data" / f"faces-v{VERSION}"
    if not (target / "rows.jsonl").is_file():
        with staged_folder(target) as staging:  # kept as is if another process finished first
            rows = generate(staging)
            (staging / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return target / "rows.jsonl"

