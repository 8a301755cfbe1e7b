"""Benchmarks of the perception stack (``fluoro-perception bench``).

Modules, each usable on its own:

* :mod:`~fluoro_perception.bench.model_latency`: ONNX Runtime model-only latency per
  execution provider, optimized-model cache off / cold / warm;
* :mod:`~fluoro_perception.bench.inprocess`: end to end in one process (message decode ->
  pipeline -> output messages), per-stage profile, throughput, CPU %, peak RSS;
* :mod:`~fluoro_perception.bench.dds`: publisher -> ``segmentation_node`` -> subscriber in
  three processes over real DDS, latency from the header stamp, dropped frames;
* :mod:`~fluoro_perception.bench.baselines`: torch eager baselines (MONAI AttentionUnet,
  BasicUNet, our default model);
* :mod:`~fluoro_perception.bench.geometry_maps`: the geometry alone on adversarial
  probability maps (its cost bound, without the network);
* :mod:`~fluoro_perception.bench.report`: summaries, targets, tables and JSON.

Figures and how to read them: ``docs/benchmarks.md``. Nothing here is imported by the
runtime; torch / MONAI / ``fluoro_training`` are imported lazily by the baselines only.
"""

#: Frame contents of the in-process run (``--content``; see
#: :mod:`~fluoro_perception.bench.inprocess`).
CONTENTS: tuple[str, ...] = ("sim", "distractors", "noise")
