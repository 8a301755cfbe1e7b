"""The typed configs of ``segmentation_node`` and ``fluoro_sim_node`` (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fluoro_perception.core.geometry import GeometryConfig
from fluoro_perception.core.pipeline import PipelineConfig
from fluoro_perception.core.tracking import TrackerConfig
from fluoro_perception.nodes.params.specs import _check_own_fields, _param

QOS_CHOICES = ("sensor_data", "reliable")
ENCODING_CHOICES = ("mono8", "mono16")
DEFAULT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
#: File name of the shipped default model inside the package's ``models/`` directory.
DEFAULT_MODEL_FILE = "default.onnx"


# --------------------------------------------------------------------------------------
# segmentation_node


@dataclass(frozen=True)
class ModelParams:
    """The ONNX model and how ONNX Runtime runs it (read at configure; set while not active)."""

    path: str = _param(
        "",
        "ONNX model file exported by fluoro-train; empty = the shipped default model "
        f"(share/fluoro_perception/models/{DEFAULT_MODEL_FILE}, or models/ in the source tree)",
        configure_only=True,
    )
    providers: tuple[str, ...] = _param(
        DEFAULT_PROVIDERS,
        "ONNX Runtime execution providers in priority order; unavailable ones are skipped",
        configure_only=True,
    )
    fp16: bool = _param(False, "TensorRT fp16 engines (GPU only)", configure_only=True)
    allow_cpu_fallback: bool = _param(
        True,
        "run on CPU when no requested GPU provider is available (else configure fails)",
        configure_only=True,
    )
    trt_cache_dir: str = _param(
        "", "TensorRT engine cache directory; empty = no engine cache", configure_only=True
    )
    intra_op_threads: int = _param(
        0, "ONNX Runtime intra-op threads; 0 = library default", min_value=0, max_value=256,
        configure_only=True,
    )  # fmt: skip
    warmup_runs: int = _param(
        2, "inference runs at configure time so the first frame is not slow", min_value=0,
        max_value=100, configure_only=True,
    )  # fmt: skip
    expected_sha256: str = _param(
        "", "refuse the model unless its SHA-256 matches; empty = no check", configure_only=True
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "providers", tuple(self.providers))
        _check_own_fields(self)
        if not self.providers:
            raise ValueError(
                "model.providers is empty; list at least one, e.g. ['CPUExecutionProvider']"
            )


@dataclass(frozen=True)
class QosParams:
    """QoS of the image input and the outputs (read at configure; set while not active)."""

    input: str = _param(
        "sensor_data",
        "image subscription QoS: sensor_data (best effort) or reliable",
        configure_only=True,
        choices=QOS_CHOICES,
    )
    input_depth: int = _param(
        1,
        "image subscription queue depth; 1 = always work on the newest frame",
        min_value=1,
        max_value=100,
        configure_only=True,
    )
    output: str = _param(
        "reliable",
        "QoS of every published result: sensor_data (best effort) or reliable",
        configure_only=True,
        choices=QOS_CHOICES,
    )
    output_depth: int = _param(
        5, "publisher queue depth", min_value=1, max_value=100, configure_only=True
    )

    def __post_init__(self) -> None:
        _check_own_fields(self)


@dataclass(frozen=True)
class SegmentationNodeConfig:
    """All settings of ``segmentation_node`` (one typed config)."""

    autostart: bool = _param(
        True,
        "configure and activate at start-up (so the node works when started alone)",
        read_only=True,
    )
    model: ModelParams = field(default_factory=ModelParams)
    qos: QosParams = field(default_factory=QosParams)
    pixel_spacing_m: float = _param(
        2.0e-4,
        "detector pixel spacing used to turn pixel positions into metres",
        unit="m/px",
        min_value=1.0e-6,
        max_value=1.0e-2,
    )
    max_age_s: float = _param(
        0.5,
        "frames older than this (clock now - header stamp) publish no pose: never a stale pose",
        unit="s",
        min_value=0.001,
        max_value=60.0,
    )
    min_tip_confidence: float = _param(
        0.3,
        "primary wire confidence below which no tip pose is published",
        min_value=0.0,
        max_value=1.0,
    )
    time_jump_reset_s: float = _param(
        1.0,
        "a stamp this much older than the previous one is a clock jump back (bag loop): "
        "tracking resets; a smaller step back is an out-of-order frame and is dropped",
        unit="s",
        min_value=0.0,
        max_value=3600.0,
    )
    bit_depth: int = _param(
        0,
        "bits used in mono16 input (12 or 16); 0 = detect per frame (max <= 4095 -> 12)",
        min_value=0,
        max_value=16,
    )
    tracking_enabled: bool = _param(
        True, "Kalman tip tracking (publishes tip_tracked); changing it resets tracking"
    )
    overlay_enabled: bool = _param(True, "publish the rgb8 overlay image for people")
    markers_enabled: bool = _param(True, "publish the RViz MarkerArray")
    diagnostics_period_s: float = _param(
        1.0, "period of /diagnostics messages", unit="s", min_value=0.05, max_value=60.0,
        read_only=True,
    )  # fmt: skip
    geometry: GeometryConfig = field(default_factory=GeometryConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)

    def __post_init__(self) -> None:
        _check_own_fields(self)
        if self.bit_depth not in (0, 12, 16):
            raise ValueError(
                f"bit_depth={self.bit_depth}; expected 0 (auto), 12 or 16 (mono16 input only)"
            )

    def pipeline_config(self) -> PipelineConfig:
        """The perception pipeline settings these node parameters select."""
        return PipelineConfig(
            geometry=self.geometry,
            tracker=self.tracker,
            tracking_enabled=self.tracking_enabled,
            bit_depth=self.bit_depth or None,
            min_tip_confidence=self.min_tip_confidence,
        )


# --------------------------------------------------------------------------------------
# fluoro_sim_node


@dataclass(frozen=True)
class SimNodeConfig:
    """All settings of ``fluoro_sim_node`` (simulated frames + ground truth)."""

    fps: float = _param(10.0, "publishing rate", unit="Hz", min_value=0.1, max_value=200.0)
    seed: int = _param(0, "simulator seed (same seed -> same frames)", min_value=0,
                       max_value=2**31 - 1, read_only=True)  # fmt: skip
    scenario: str = _param(
        "",
        "simulator scenario; empty = sampled from the seed",
        read_only=True,
        choices=("", "mono", "dual", "stiff", "stent", "contrast", "collimation"),
    )
    height: int = _param(256, "image height", unit="px", min_value=32, max_value=4096,
                         read_only=True)  # fmt: skip
    width: int = _param(256, "image width", unit="px", min_value=32, max_value=4096,
                        read_only=True)  # fmt: skip
    encoding: str = _param(
        "mono8",
        "image encoding: mono8, or mono16 carrying 12-bit data",
        read_only=True,
        choices=ENCODING_CHOICES,
    )
    frames: int = _param(
        0, "frames per sequence; 0 = endless", min_value=0, max_value=10**9, read_only=True
    )
    loop: bool = _param(
        False, "after `frames` frames start the sequence again (else stop publishing)",
        read_only=True,
    )  # fmt: skip
    frame_id: str = _param("fluoro_detector", "header frame_id of every message", read_only=True)
    publish_ground_truth: bool = _param(True, "publish /fluoro/ground_truth/* topics")
    prefetch_frames: int = _param(
        8, "frames generated ahead by the worker thread", min_value=1, max_value=256,
        read_only=True,
    )  # fmt: skip
    qos: str = _param(
        "reliable",
        "QoS of the published image and ground truth: reliable (also reaches best-effort "
        "subscribers) or sensor_data",
        read_only=True,
        choices=QOS_CHOICES,
    )

    def __post_init__(self) -> None:
        _check_own_fields(self)


CONFIG_CLASSES = {"segmentation_node": SegmentationNodeConfig, "fluoro_sim_node": SimNodeConfig}
