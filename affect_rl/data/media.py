"""Media columns (image, images, video, audio) and the models that can take them.

An image value may be a path (relative paths are already resolved against the dataset file), a
``datasets`` Image feature value (``{"bytes": ..., "path": ...}``, as Parquet, Arrow and hub
datasets hold them) or a PIL image. ``check_images`` opens every image of the rows a stage uses
before any training: a missing, unreadable or oversized image is a DataError naming the row and
the path, so no row is ever dropped silently. The training sets carry each row's images as one
``images`` column of ``datasets`` Image features (decoded to PIL when TRL reads them); the
processor of the model then resizes them to its input size.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from affect_rl.data.tasks import MEDIA_COLUMNS
from affect_rl.errors import DataError

IMAGE_COLUMNS = ("image", "images")
# Larger images are refused: they cost seconds and hundreds of MB to decode, only to be resized
# to a few hundred pixels by the processor (PIL warns about "decompression bombs" from 89 MP).
MAX_IMAGE_PIXELS = 8192 * 8192


def first_media(rows, columns=MEDIA_COLUMNS) -> tuple[str, int] | None:
    """(column, row index) of the first row holding a value in one of ``columns``, or None."""
    present = [column for column in columns if column in getattr(rows, "column_names", columns)]
    for index, row in enumerate(rows):
        for column in present:
            if row.get(column) not in (None, [], ""):
                return column, index
    return None


def check_text_model_rows(rows, model_name: str) -> None:
    """A text model cannot see media: name the column and what would work instead."""
    found = first_media(rows)
    if found is None:
        return
    column, index = found
    raise DataError(
        f"row {index + 1} has a {column!r} column, but {model_name} is a text model, which cannot take "
        f"{column}; use a vision-language model (one AutoModelForImageTextToText loads), or set "
        f"ignore_media: true to train on the rows' text alone"
    )


def check_vision_model_rows(rows, model_name: str) -> None:
    """A vision-language model takes images; video and audio columns are not wired up yet."""
    found = first_media(rows, ("video", "audio"))
    if found is not None:
        column, index = found
        raise DataError(
            f"row {index + 1} has a {column!r} column, which affect-rl does not yet pass to vision-language models "
            f"such as {model_name} (images only); set ignore_media: true to drop media columns, or remove that column"
        )
    check_images(rows)


def check_model_rows(rows, model_name: str, vision_language: bool) -> None:
    """The media check for the kind of model a stage runs: images opened for a vision-language
    model, media refused for a text model."""
    if vision_language:
        check_vision_model_rows(rows, model_name)
    else:
        check_text_model_rows(rows, model_name)


def row_name(row: dict, index: int) -> str:
    return f"row id {row['id']!r}" if row.get("id") is not None else f"row {index + 1}"


def row_images(row: dict) -> list:
    """The row's image values in order: ``image``, then the items of ``images``."""
    values = [] if row.get("image") in (None, "") else [row["image"]]
    more = row.get("images")
    if more not in (None, ""):
        values += list(more) if isinstance(more, (list, tuple)) else [more]
    return values


def describe(value: Any) -> str:
    """How an error names an image: its path, else what it is."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return value.get("path") or f"an embedded image ({len(value.get('bytes') or b'')} bytes)"
    return f"an in-memory {type(value).__name__}"


def open_image(value: Any):
    """A loaded PIL image from a path, an Image feature value or a PIL image; OSError/ValueError
    when it cannot be read."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict) and value.get("bytes"):
        image = Image.open(io.BytesIO(value["bytes"]))
    elif isinstance(value, (str, dict)):
        path = value if isinstance(value, str) else value.get("path")
        if not path:
            raise ValueError("it holds neither bytes nor a path")
        image = Image.open(path)
    else:
        raise ValueError(f"a {type(value).__name__} is not an image (expected a path, an Image feature or a PIL image)")
    image.load()
    return image


def image_problem(value: Any, max_pixels: int = MAX_IMAGE_PIXELS) -> str | None:
    """What is wrong with one image value (with the way out), or None when it opens and fits."""
    from PIL import Image

    if isinstance(value, str) and not Path(value).is_file():
        return (f"image {value} does not exist; fix the path (relative paths are resolved against the dataset "
                f"file's folder)")  # fmt: skip
    try:
        with _bomb_check_off():
            image = open_image(value)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return f"image {describe(value)} cannot be read ({error}); replace the file or remove the row"
    width, height = image.size
    if width * height > max_pixels:
        return (f"image {describe(value)} is {width} x {height} pixels, more than the {max_pixels:,} accepted; "
                f"downscale it (the processor resizes every image to the model's input size anyway)")  # fmt: skip
    return None


@contextmanager
def _bomb_check_off():
    """PIL refuses images over 179 MP with its own error; the size check above reports them instead."""
    from PIL import Image

    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def check_images(rows, max_pixels: int = MAX_IMAGE_PIXELS) -> int:
    """Open every image of ``rows``; DataError naming the first bad row and path. Returns the count."""
    count = 0
    for index, row in enumerate(rows):
        for value in row_images(row):
            problem = image_problem(value, max_pixels)
            if problem is not None:
                raise DataError(f"{row_name(row, index)}: {problem}")
            count += 1
    return count


def as_image_feature(value: Any) -> dict:
    """An image value as the storage of a ``datasets`` Image feature: ``{"bytes", "path"}``."""
    from PIL import Image

    if isinstance(value, str):
        return {"bytes": None, "path": value}
    if isinstance(value, dict):
        return {"bytes": value.get("bytes"), "path": value.get("path")}
    if isinstance(value, Image.Image):
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return {"bytes": buffer.getvalue(), "path": None}
    raise DataError(f"{describe(value)} is not an image; give a path, an Image feature or a PIL image")


def with_images_column(ds, rows) -> Any:
    """``ds`` plus an ``images`` column (a list of Image features per row, from each row of ``rows``'
    ``image`` and ``images``), when any row has one; TRL's trainers read it. Unchanged otherwise."""
    from datasets import Image, List

    images = [[as_image_feature(value) for value in row_images(row)] for row in rows]
    if not any(images):
        return ds
    if "images" in ds.column_names:
        ds = ds.remove_columns("images")
    return ds.add_column("images", images).cast_column("images", List(Image()))


def images_to_files(rows: list[dict], folder: Path) -> list[dict]:
    """Rows whose embedded images (bytes or PIL) are written under ``folder`` and replaced by their
    paths, so the rows can be saved as JSON lines; path values are kept."""
    saved = []
    for index, row in enumerate(rows):
        row = dict(row)
        for column in IMAGE_COLUMNS:
            value = row.get(column)
            if value in (None, "", []):
                continue
            values = value if isinstance(value, list) else [value]
            paths = [_stored_path(item, folder / f"{index}-{column}-{k}.png") for k, item in enumerate(values)]
            row[column] = paths if isinstance(value, list) else paths[0]
        saved.append(row)
    return saved


def _stored_path(value: Any, path: Path) -> str:
    """The image's own path, or ``path`` after writing an embedded image there."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("path") and not value.get("bytes"):
        return value["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    open_image(value).save(path)
    return str(path)


def multimodal_prompt(messages: list[dict], images: list) -> list[dict]:
    """Chat messages with the images as content parts of the first user turn, as TRL's trainers
    build them (``trl.data_utils.prepare_multimodal_messages``); images opened as RGB PIL images."""
    from trl.data_utils import prepare_multimodal_messages

    return prepare_multimodal_messages(messages, images=[open_image(value).convert("RGB") for value in images])
