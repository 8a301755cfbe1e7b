"""Geometry of segmented instruments: guidewire centerlines, distal tips and stents.

Stage 4 of the pipeline (preprocess -> infer -> decode -> **geometry** -> tracking). The
functions take per-pixel probabilities on one pixel grid (usually the model grid) and
return :class:`~fluoro_perception.core.types.WireDetection` /
:class:`~fluoro_perception.core.types.StentDetection` in the **same** grid; the caller
maps points to the input image with ``FrameTransform.points_to_input``.

Guidewire centerlines (seed 001_d0d03ac8067c31fe.txt, FRA-Net: mono- and dual-guidewire
segmentation and tracking; the paper segments the wires and leaves the centerline to
post-processing, which is what this module does):

1. threshold the guidewire probability, remove small components, fill pin holes;
2. skeletonize (scikit-image) and turn the skeleton into a graph whose nodes are end
   points and junction clusters and whose edges are ordered pixel paths;
3. prune short spurs, merge junctions joined by very short edges (the skeleton of two
   wires crossing at a shallow angle has two junctions a few pixels apart);
4. at every junction pair the incident edges by straightness (smallest turn first), so a
   wire continues straight through a crossing and two crossing wires stay two instances;
5. bridge gaps between collinear, direction-consistent chain ends (low contrast);
6. smooth (Savitzky-Golay) and resample at about 1 px;
7. choose the distal end (tip) from the tip heatmap, the image/field border, a catheter
   around the end, curvature and radio-opacity; order the centerline tip first.

Cost is bounded on any content: caps on the components traced (most wire-like first),
on blob-like components, on skeleton pixels and graph nodes, on chains and on stents reported
(``max_*`` fields of :class:`GeometryConfig`); every item a cap leaves out is counted
in the ``caps_hit`` counter the entry points accept (:data:`GEOMETRY_CAPS` names them).

Modules (each names what it holds; this package re-exports the public API):

``config``          :class:`GeometryConfig`
``masks``           input checks, :func:`clean_mask`, hole filling, bounding boxes
``polyline``        path length, end directions, trimming, resampling, smoothing
``skeleton_graph``  skeleton -> pixel graph, graph simplification, junction pairing
``chains``          chain linking, smooth joins, gap and stent bridging, forks
``tips``            distal-end score, catheter cue, wire confidence, tip direction
``candidates``      smoothing, confidence bounds, tip-first orientation where it can
                    matter, forks
``extract``         :func:`extract_wires`, the wire entry point, step by step
``stents``          :func:`extract_stents`

Which pieces are written here rather than taken from a library (skan, networkx, scipy's
DisjointSet and splines), with the measured figures, is stated in the docstrings of
``skeleton_graph`` and ``polyline``.
"""

from fluoro_perception.core.geometry.config import GEOMETRY_CAPS, GeometryConfig, new_caps_hit
from fluoro_perception.core.geometry.extract import extract_wires
from fluoro_perception.core.geometry.masks import clean_mask
from fluoro_perception.core.geometry.stents import extract_stents

__all__ = [
    "GEOMETRY_CAPS",
    "GeometryConfig",
    "clean_mask",
    "extract_stents",
    "extract_wires",
    "new_caps_hit",
]
