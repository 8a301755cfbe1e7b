"""Shipped models, their model cards and the integrity check the runtime runs before loading.

Every shipped model ``models/<name>.onnx`` has a *model card* ``models/<name>.md`` beside
it: a Markdown page for people (architecture, training data, validation metrics, limits)
that also carries one machine-readable line::

    sha256: 3f5a...  (64 hex digits)

:func:`verify_model` hashes the ONNX file and compares it with that line before the
engine parses anything, so a truncated download or a silently replaced file is refused
with one clear line instead of producing wrong masks. The digest it returns is passed on
to :class:`~fluoro_perception.core.engine.InferenceEngine` as ``expected_sha256``.

No rclpy here: the command-line tools and the nodes both use this module.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from fluoro_perception.core.engine import ModelLoadError, file_sha256
from fluoro_perception.nodes.graph import share_dirs
from fluoro_perception.nodes.params import DEFAULT_MODEL_FILE

#: Folder of the shipped models inside a share directory (or the source tree).
MODELS_DIR = "models"
#: Suffix of a model card next to its ``.onnx`` file.
CARD_SUFFIX = ".md"
# "sha256: <hex>" with optional Markdown decoration: list bullet, bold key, backticks.
_SHA256_LINE = re.compile(
    r"^\s*(?:[-*+]\s+)?\**sha-?256\**\s*[:=]\s*`?(?P<digest>[0-9a-fA-F]+)`?\s*$",
    re.IGNORECASE,
)
_SHA256_HEX_DIGITS = 64
_SHORT_DIGEST = 12


def default_model_path(search_dirs: Sequence[str | Path] | None = None) -> Path:
    """The shipped default model ``models/default.onnx``.

    Parameters
    ----------
    search_dirs : sequence of str or Path, optional
        Folders that may hold ``models/``; default: the package share directories
        (source tree first, then installed prefixes), as for ``config/``.

    Returns
    -------
    Path
        The first existing ``<dir>/models/default.onnx``.

    Raises
    ------
    FileNotFoundError
        One line naming the missing file, where it was searched and how to get one.
    """
    directories = [Path(d) for d in search_dirs] if search_dirs is not None else share_dirs()
    relative = Path(MODELS_DIR) / DEFAULT_MODEL_FILE
    candidates = [directory / relative for directory in directories]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    places = ", ".join(str(c) for c in candidates) or "(no share directory found)"
    raise FileNotFoundError(
        f"no default model is shipped: {relative} is missing (searched {places}); train and "
        f"export one with `fluoro-train export RUN/best.pt --output {relative}` (plus its card "
        f"{relative.with_suffix(CARD_SUFFIX)}) or pass --model FILE.onnx"
    )


def model_card_path(onnx_path: str | Path) -> Path:
    """The model card of ``onnx_path``: ``<name>.md`` in the same folder."""
    return Path(onnx_path).with_suffix(CARD_SUFFIX)


def read_card_sha256(card_path: str | Path) -> str | None:
    """The SHA-256 a model card states on its ``sha256: <64 hex>`` line.

    Parameters
    ----------
    card_path : str or Path
        Markdown model card.

    Returns
    -------
    str or None
        Lower-case hex digest, or None when the card has no ``sha256:`` line.

    Raises
    ------
    ModelLoadError
        The card cannot be read, a ``sha256:`` line does not hold 64 hex digits, or the
        card states two different digests.
    """
    path = Path(card_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(
            f"model card {path} cannot be read ({type(exc).__name__}); expected a UTF-8 "
            "Markdown file with a `sha256: <64 hex digits>` line"
        ) from None
    digests: list[str] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        match = _SHA256_LINE.match(line)
        if match is None:
            continue
        digest = match["digest"].lower()
        if len(digest) != _SHA256_HEX_DIGITS:
            raise ModelLoadError(
                f"model card {path}:{line_number}: sha256 has {len(digest)} hex digits; "
                f"expected {_SHA256_HEX_DIGITS} (write `sha256sum MODEL.onnx` output there)"
            )
        digests.append(digest)
    if len(set(digests)) > 1:
        raise ModelLoadError(
            f"model card {path} states {len(set(digests))} different sha256 values; "
            "expected exactly one (remove the stale line)"
        )
    return digests[0] if digests else None


def verify_model(onnx_path: str | Path, *, require_card: bool = True) -> str | None:
    """Check a model file against the SHA-256 on its model card.

    Parameters
    ----------
    onnx_path : str or Path
        ``.onnx`` file; its card is :func:`model_card_path`.
    require_card : bool
        True (shipped models): a missing card is an error. False (a user's own model):
        without a card nothing is checked and None is returned; a card that exists is
        still enforced.

    Returns
    -------
    str or None
        The verified hex digest (pass it as ``expected_sha256`` to the engine), or None
        when ``require_card`` is False and there is no card.

    Raises
    ------
    ModelLoadError
        Missing model file, missing card (when required), card without ``sha256:``, or a
        file whose digest differs from the card's.
    """
    path = Path(onnx_path)
    card = model_card_path(path)
    if not path.is_file():
        raise ModelLoadError(f"model {path} does not exist; expected an exported .onnx file")
    if not card.is_file():
        if not require_card:
            return None
        raise ModelLoadError(
            f"model {path.name} has no model card {card}; expected {card.name} beside it with a "
            "`sha256: <64 hex digits>` line (re-download or re-export the model with its card)"
        )
    expected = read_card_sha256(card)
    if expected is None:
        raise ModelLoadError(
            f"model card {card} has no `sha256: <64 hex digits>` line; add the output of "
            f"`sha256sum {path.name}` to it"
        )
    actual = file_sha256(path)
    if actual != expected:
        raise ModelLoadError(
            f"model {path.name} sha256 {actual[:_SHORT_DIGEST]}... does not match its card "
            f"{card} ({expected[:_SHORT_DIGEST]}...): the file was modified or corrupted; "
            "re-download or re-export"
        )
    return actual


def write_model_card(onnx_path: str | Path, description: str = "") -> Path:
    """Write (or replace) the card of ``onnx_path`` with its current SHA-256.

    For tools that export or install a model; the card gets a title, ``description``
    and the ``sha256:`` line :func:`verify_model` reads.

    Returns
    -------
    Path
        The card written.
    """
    path = Path(onnx_path)
    if not path.is_file():
        raise FileNotFoundError(f"model {path} does not exist; export it before writing its card")
    card = model_card_path(path)
    body = description.strip()
    text = f"# {path.stem}\n\n" + (f"{body}\n\n" if body else "") + f"sha256: {file_sha256(path)}\n"
    card.write_text(text, encoding="utf-8")
    return card


__all__ = [
    "CARD_SUFFIX",
    "MODELS_DIR",
    "default_model_path",
    "model_card_path",
    "read_card_sha256",
    "verify_model",
    "write_model_card",
]
