"""Model cards and the sha256 integrity check (fluoro_perception.model_registry)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fluoro_perception.core.engine import InferenceEngine, ModelLoadError
from fluoro_perception.model_registry import (
    default_model_path,
    model_card_path,
    read_card_sha256,
    verify_model,
    write_model_card,
)

DIGEST = "ab" * 32


def _model_file(folder: Path, content: bytes = b"pretend onnx bytes") -> Path:
    path = folder / "models" / "fra_net.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _card(model: Path, lines: str) -> Path:
    card = model_card_path(model)
    card.write_text(lines, encoding="utf-8")
    return card


def test_model_card_path_is_md_beside_the_onnx():
    assert model_card_path("models/fra_net.onnx") == Path("models/fra_net.md")
    assert model_card_path(Path("/a/b/default.onnx")) == Path("/a/b/default.md")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"# card\n\nsha256: {DIGEST}\n", DIGEST),
        (f"- **sha256**: `{DIGEST.upper()}`\n", DIGEST),
        (f"SHA-256 = {DIGEST}\n", DIGEST),
        (f"sha256: {DIGEST}\nsha256: {DIGEST}\n", DIGEST),  # repeated, same value
        ("# card without a digest\n\nsha256 of the data set is unknown\n", None),
    ],
)
def test_read_card_sha256(tmp_path, text, expected):
    card = tmp_path / "m.md"
    card.write_text(text, encoding="utf-8")
    assert read_card_sha256(card) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sha256: abc123\n", "has 6 hex digits; expected 64"),
        (f"sha256: {DIGEST}\nsha256: {'cd' * 32}\n", "2 different sha256 values"),
    ],
)
def test_read_card_sha256_rejects_bad_cards(tmp_path, text, message):
    card = tmp_path / "m.md"
    card.write_text(text, encoding="utf-8")
    with pytest.raises(ModelLoadError, match=message):
        read_card_sha256(card)


def test_good_card_passes_and_returns_the_digest(tmp_path):
    model = _model_file(tmp_path)
    expected = hashlib.sha256(model.read_bytes()).hexdigest()
    _card(model, f"# fra_net\n\nTrained on sim v1.\n\nsha256: {expected}\n")
    assert verify_model(model) == expected


def test_tampered_file_is_refused_with_the_clear_message(tmp_path):
    model = _model_file(tmp_path)
    original = hashlib.sha256(model.read_bytes()).hexdigest()
    card = _card(model, f"sha256: {original}\n")
    model.write_bytes(b"pretend onnx bytes, modified")
    actual = hashlib.sha256(model.read_bytes()).hexdigest()
    with pytest.raises(ModelLoadError) as info:
        verify_model(model)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"model fra_net.onnx sha256 {actual[:12]}... does not match its card")
    assert str(card) in message
    assert f"({original[:12]}...)" in message
    assert "the file was modified or corrupted; re-download or re-export" in message


def test_missing_card_is_refused(tmp_path):
    model = _model_file(tmp_path)
    with pytest.raises(ModelLoadError, match=r"has no model card .*fra_net\.md"):
        verify_model(model)


def test_missing_card_is_allowed_for_user_models_but_a_present_card_is_enforced(tmp_path):
    model = _model_file(tmp_path)
    assert verify_model(model, require_card=False) is None
    _card(model, f"sha256: {DIGEST}\n")
    with pytest.raises(ModelLoadError, match="does not match its card"):
        verify_model(model, require_card=False)


def test_card_without_sha256_is_refused(tmp_path):
    model = _model_file(tmp_path)
    _card(model, "# fra_net\n\nno digest here\n")
    with pytest.raises(ModelLoadError, match="has no `sha256: <64 hex digits>` line"):
        verify_model(model)


def test_missing_model_file_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        verify_model(tmp_path / "nothing.onnx")


def test_write_model_card_round_trips(tmp_path):
    model = _model_file(tmp_path)
    card = write_model_card(model, "A description.")
    assert card == model_card_path(model)
    assert "A description." in card.read_text(encoding="utf-8")
    assert verify_model(model) == hashlib.sha256(model.read_bytes()).hexdigest()


def test_default_model_path_found_and_missing(tmp_path):
    share = tmp_path / "share"
    with pytest.raises(FileNotFoundError) as info:
        default_model_path([share])
    message = str(info.value)
    assert "\n" not in message
    assert "models/default.onnx is missing" in message and "--model" in message
    target = share / "models" / "default.onnx"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    assert default_model_path([tmp_path / "empty", share]) == target


def test_verified_digest_feeds_the_engine(tmp_path):
    from model_fixtures import make_random_onnx_model

    model = make_random_onnx_model(tmp_path / "models" / "tiny.onnx", input_size=(32, 32))
    write_model_card(model)
    digest = verify_model(model)
    engine = InferenceEngine(
        model,
        providers=["CPUExecutionProvider"],
        expected_sha256=digest,
        warmup_runs=0,
        use_optimized_cache=False,
    )
    assert engine.model_sha256 == digest
    engine.close()


SHIPPED = sorted((Path(__file__).resolve().parents[2] / "models").glob("*.onnx"))


@pytest.mark.parametrize("model", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_model_matches_its_card_and_names_its_weights(model):
    from fluoro_perception.model_registry import verify_model

    assert verify_model(model) == hashlib.sha256(model.read_bytes()).hexdigest()
    weights = model.with_suffix(".pt")
    if weights.is_file():  # a card names the weights a next run continues from
        assert f"models/{weights.name}" in model.with_suffix(".md").read_text()
