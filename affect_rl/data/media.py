"""Media columns (image, images, video, audio) and the models that can take them."""

from __future__ import annotations

from affect_rl.data.tasks import MEDIA_COLUMNS
from affect_rl.errors import DataError


def first_media(rows) -> tuple[str, int] | None:
    """(column, row index) of the first row holding a media value, or None."""
    columns = [column for column in MEDIA_COLUMNS if column in getattr(rows, "column_names", MEDIA_COLUMNS)]
    for index, row in enumerate(rows):
        for column in columns:
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
