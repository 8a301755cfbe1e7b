"""Bag replay: run the perception stack on a recorded rosbag2 and report what it did.

Two modes (``fluoro-perception replay``, ``docs/replay.md``):

* **offline** (:func:`replay_offline`): frames are read with ``rosbags`` through
  :mod:`fluoro_perception.bagio`, run through
  :class:`~fluoro_perception.core.pipeline.PerceptionPipeline` one after the other
  (deterministic, as fast as the CPU allows) and every perception output is written to an
  MCAP bag under the same topic names and types the ROS node publishes, stamped with the
  input stamps. No DDS, no ``rclpy.init``.
* **live** (:func:`replay_live`): the bag player node, the segmentation node (with
  ``use_sim_time``) and the recorder node run in ONE process on a
  ``MultiThreadedExecutor`` over real DDS; the bag is played at its recorded rate (or
  ``rate`` times it) and dropped frames, end-to-end latency and the achieved rate are
  reported.

When the bag carries ground truth (``/fluoro/ground_truth/...``, ``docs/bag_format.md``)
both modes also write the evaluation report of :mod:`fluoro_perception.evaluation.report`
(``metrics.json``, ``report.md``, figures). Every run writes ``replay.json`` and
``replay.md`` (frame accounting, timing, skipped messages) and ``errors.jsonl`` (one
record per frame, or unnamed group of frames, that failed; one frame never ends a run).

Importing this package does not import rclpy: the ROS message classes (built by
:mod:`fluoro_perception.nodes.conversions`, so offline outputs are byte-for-byte the
messages the node publishes), ``rclpy.serialization`` and the nodes are imported when a
replay runs.

Modules (every public name is re-exported here; import from ``fluoro_perception.replay``):

* :mod:`~fluoro_perception.replay.offline`: :func:`replay_offline`;
* :mod:`~fluoro_perception.replay.live`: :func:`replay_live` (player, node, recorder);
* :mod:`~fluoro_perception.replay.spacing`: the pixel spacing of a bag;
* :mod:`~fluoro_perception.replay.truth`: a bag frame's ground truth as a ``SimFrame``;
* :mod:`~fluoro_perception.replay.messages`: the node's messages for a result, to a bag;
* :mod:`~fluoro_perception.replay.recorded`: results rebuilt from an output bag, scored;
* :mod:`~fluoro_perception.replay.summary`: :class:`ReplaySummary`, ``replay.json`` / ``.md``;
* :mod:`~fluoro_perception.replay.outputs`: the output folder.

Topic names and types come from :mod:`fluoro_perception.topics`, which the bag recorder
node imports as well (so the recorder never imports this package).
"""

from fluoro_perception.replay.live import (
    FAILED_DROP_STAGES,
    NOT_RECEIVED,
    record_node_failures,
    replay_live,
    spin_until,
)
from fluoro_perception.replay.messages import perception_messages, write_rclpy_message
from fluoro_perception.replay.offline import load_node_config, record_bag_skips, replay_offline
from fluoro_perception.replay.outputs import OUTPUT_BAG_DIR, prepare_output_dir
from fluoro_perception.replay.recorded import (
    SCORING_FAILED,
    evaluate_recorded,
    results_from_output_bag,
)
from fluoro_perception.replay.spacing import (
    FALLBACK_PIXEL_SPACING_M,
    GT_TIP_ARROW_LENGTH_PX,
    pixel_spacing_from_markers,
    resolve_pixel_spacing,
)
from fluoro_perception.replay.summary import (
    REPORT_LINK,
    SUMMARY_JSON,
    SUMMARY_MD,
    ReplaySummary,
    accuracy_figures,
    achieved_rate_hz,
    render_summary_markdown,
    write_summary,
)
from fluoro_perception.replay.truth import (
    DAMAGE_DETAIL_PREFIX,
    UNREADABLE_AFTER_DAMAGE,
    iter_bag_frames,
    truth_from_bag_frame,
)
from fluoro_perception.topics import (
    DEFAULT_NAMESPACE,
    DIAGNOSTICS_TOPIC,
    DIAGNOSTICS_TYPE,
    perception_topics,
    recorded_topic_types,
    ros_type_name,
)

REPLAY_MODES = ("offline", "live")

__all__ = [
    "DAMAGE_DETAIL_PREFIX",
    "DEFAULT_NAMESPACE",
    "DIAGNOSTICS_TOPIC",
    "DIAGNOSTICS_TYPE",
    "FAILED_DROP_STAGES",
    "FALLBACK_PIXEL_SPACING_M",
    "GT_TIP_ARROW_LENGTH_PX",
    "NOT_RECEIVED",
    "OUTPUT_BAG_DIR",
    "REPLAY_MODES",
    "REPORT_LINK",
    "ReplaySummary",
    "SCORING_FAILED",
    "SUMMARY_JSON",
    "SUMMARY_MD",
    "UNREADABLE_AFTER_DAMAGE",
    "accuracy_figures",
    "achieved_rate_hz",
    "evaluate_recorded",
    "iter_bag_frames",
    "load_node_config",
    "perception_messages",
    "perception_topics",
    "pixel_spacing_from_markers",
    "prepare_output_dir",
    "record_bag_skips",
    "record_node_failures",
    "recorded_topic_types",
    "render_summary_markdown",
    "replay_live",
    "replay_offline",
    "resolve_pixel_spacing",
    "results_from_output_bag",
    "ros_type_name",
    "spin_until",
    "truth_from_bag_frame",
    "write_rclpy_message",
    "write_summary",
]
