"""A real-photo object detector as a meter: YOLOX-nano (COCO, Apache-2.0) run with onnxruntime.

It never learnt from the procedural world or from our models, so it judges whether a clip's
cars look like cars. Weights load from a local file only (never downloaded): by default
`../shared/detectors/yolox_nano.onnx` beside the repository, or $DRIVESIM_DETECTOR.
Pre/post-processing follow Megvii's YOLOX demo: letterbox to 416 (top-left, pad 114), BGR
0-255 without normalisation; decode the anchor-free grid of strides 8/16/32; score =
objectness x class; class-wise NMS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np

DEFAULT_DETECTOR = Path(__file__).resolve().parents[3] / "shared" / "detectors" / "yolox_nano.onnx"
INPUT_SIZE = 416
STRIDES = (8, 16, 32)
PAD_VALUE = 114
COCO_CLASSES = {0: "person", 1: "bicycle", 2: "car", 3: "motorcycle", 5: "bus", 7: "truck"}
VEHICLES = ("car", "bus", "truck")
FEATURE_OUTPUT_HINT = "a 13x13 Mul/Relu activation of >= 256 channels before the neck's first Resize (dark5)"
# The road band: where cars are at driving distances in a forward dash-cam frame (fractions of height).
ROAD_BAND = (0.35, 0.85)
TILE_ASPECT = 1.6  # tile width / height
TILE_OVERLAP = 0.25  # of the tile width, between neighbouring tiles
# Detections merged across passes (full frame + tiles) suppress each other within a group, so a car
# that one pass calls a truck is still one object.
MERGE_GROUPS = {
    "car": "vehicle",
    "bus": "vehicle",
    "truck": "vehicle",
    "bicycle": "two-wheeler",
    "motorcycle": "two-wheeler",
    "person": "person",
}


class DetectorWeightsError(FileNotFoundError):
    """The detector's ONNX file is missing or not YOLOX-nano."""


@dataclass(frozen=True)
class Detection:
    """One detection in pixels of the input frame (x2, y2 exclusive), with its COCO class name."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    category: str


def default_detector_path() -> Path:
    """$DRIVESIM_DETECTOR, else ../shared/detectors/yolox_nano.onnx beside the repository."""
    return Path(os.environ.get("DRIVESIM_DETECTOR") or DEFAULT_DETECTOR)


def letterbox(image_rgb: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, float]:
    """uint8 RGB [H,W,3] -> (float32 BGR [1,3,size,size] padded with 114 at the bottom/right, ratio)."""
    h, w = image_rgb.shape[:2]
    ratio = min(size / h, size / w)
    nh, nw = round(h * ratio), round(w * ratio)
    canvas = np.full((size, size, 3), PAD_VALUE, np.uint8)
    resized = cv2.resize(image_rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas[:nh, :nw] = resized[..., ::-1]  # RGB -> BGR
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], np.float32), ratio


def grid_and_strides(size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres' grid offsets [N,2] and their strides [N,1], in YOLOX's output order."""
    grids, strides = [], []
    for s in STRIDES:
        n = size // s
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel()], 1))
        strides.append(np.full((n * n, 1), s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)


def decode(
    raw: np.ndarray,
    ratio: float,
    conf: float = 0.3,
    nms_iou: float = 0.45,
    classes: dict[int, str] = COCO_CLASSES,
) -> list[Detection]:
    """YOLOX output [N,85] (one image) -> detections in input-frame pixels, after class-wise NMS."""
    grid, stride = grid_and_strides()
    centre = (raw[:, :2] + grid) * stride
    size = np.exp(np.clip(raw[:, 2:4], -10, 10)) * stride
    keep_ids = np.array(sorted(classes))
    scores = raw[:, 4:5] * raw[:, 5 + keep_ids]  # [N, kept classes]
    best = scores.argmax(1)
    score = scores[np.arange(len(best)), best]
    sel = score >= conf
    if not sel.any():
        return []
    xyxy = np.concatenate([centre - size / 2, centre + size / 2], 1)[sel] / ratio
    score, cls = score[sel], keep_ids[best[sel]]
    out = []
    for c in np.unique(cls):
        idx = np.flatnonzero(cls == c)
        wh = xyxy[idx, 2:] - xyxy[idx, :2]
        kept = cv2.dnn.NMSBoxes(
            np.concatenate([xyxy[idx, :2], wh], 1).tolist(), score[idx].tolist(), conf, nms_iou
        )
        for k in np.asarray(kept).reshape(-1):
            x1, y1, x2, y2 = (float(v) for v in xyxy[idx[k]])
            out.append(Detection(x1, y1, x2, y2, float(score[idx[k]]), classes[int(c)]))
    return sorted(out, key=lambda d: -d.score)


class Detector:
    """YOLOX-nano on onnxruntime: `detect(frame)` -> detections; `detect_with_features` adds backbone
    features for a Frechet distance. Stateless between calls; one per thread."""

    def __init__(
        self,
        path: str | Path | None = None,
        conf: float = 0.3,
        nms_iou: float = 0.45,
        threads: int | None = None,
    ):
        import onnxruntime as ort

        self.path = Path(path) if path else default_detector_path()
        if not self.path.is_file():
            raise DetectorWeightsError(
                f"detector weights not found at {self.path}: put YOLOX-nano (yolox_nano.onnx, "
                "Apache-2.0, 416x416 COCO) there, or pass --detector PATH / set DRIVESIM_DETECTOR. "
                "drivesim never downloads weights."
            )
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        try:
            model = self._with_feature_output(self.path.read_bytes())
            self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
            raise DetectorWeightsError(
                f"{self.path} is not a readable ONNX model ({err}); "
                "expected YOLOX-nano, 416x416, COCO 80 classes"
            ) from err
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if list(inputs[0].shape[1:]) != [3, INPUT_SIZE, INPUT_SIZE] or outputs[0].shape[-1] != 85:
            raise DetectorWeightsError(
                f"{self.path}: input {inputs[0].shape}, output {outputs[0].shape}; expected "
                f"[1,3,{INPUT_SIZE},{INPUT_SIZE}] -> [1,N,85] (YOLOX, COCO 80 classes)"
            )
        self.input_name = inputs[0].name
        self.output_names = [o.name for o in outputs]
        self.conf, self.nms_iou = conf, nms_iou

    def _with_feature_output(self, model_bytes: bytes) -> bytes:
        """Expose the deepest stride-32 backbone feature map as a second output (for Frechet)."""
        import onnx
        from onnx import shape_inference

        model = shape_inference.infer_shapes(onnx.load_from_string(model_bytes))
        shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.value_info}
        feature = None
        for node in model.graph.node:  # dark5's output: the last 13x13 activation before the neck upsamples
            if node.op_type in ("Resize", "Upsample"):
                break
            shape = shapes.get(node.output[0], [])
            if (
                node.op_type in ("Mul", "Relu")
                and len(shape) == 4
                and shape[2:] == [INPUT_SIZE // 32] * 2
                and shape[1] >= 256
            ):
                feature = node.output[0]
        self.feature_name = feature
        if feature is not None and feature not in [o.name for o in model.graph.output]:
            info = next(v for v in model.graph.value_info if v.name == feature)
            model.graph.output.append(info)
        return model.SerializeToString()

    def detect(self, frame_rgb: np.ndarray) -> list[Detection]:
        """uint8 RGB [H,W,3] -> detections of COCO_CLASSES in its pixels, best first."""
        blob, ratio = letterbox(frame_rgb)
        # the detector's outputs are dense arrays (onnxruntime also types sparse ones, lists and maps)
        raw = cast("list[np.ndarray]", self.session.run(self.output_names[:1], {self.input_name: blob}))[0][0]
        return clip_to_frame(decode(raw, ratio, self.conf, self.nms_iou), *frame_rgb.shape[:2])

    def detect_with_features(self, frame_rgb: np.ndarray) -> tuple[list[Detection], np.ndarray]:
        """uint8 RGB [H,W,3] -> (detections, backbone features [C] averaged over the unpadded cells)."""
        if self.feature_name is None:
            raise RuntimeError(f"{self.path}: found no 13x13 backbone map to expose ({FEATURE_OUTPUT_HINT})")
        blob, ratio = letterbox(frame_rgb)
        outputs = self.session.run([self.output_names[0], self.feature_name], {self.input_name: blob})
        raw, fmap = cast("list[np.ndarray]", outputs)  # dense arrays
        h, w = frame_rgb.shape[:2]
        cells_h, cells_w = (max(1, int(np.ceil(n * ratio / 32))) for n in (h, w))
        detections = clip_to_frame(decode(raw[0], ratio, self.conf, self.nms_iou), h, w)
        return detections, fmap[0, :, :cells_h, :cells_w].mean(axis=(1, 2))


def clip_to_frame(detections: list[Detection], height: int, width: int) -> list[Detection]:
    """Detections with their boxes clipped to a [height, width] frame (empty ones dropped)."""
    out = []
    for d in detections:
        x1, y1 = min(max(d.x1, 0.0), width), min(max(d.y1, 0.0), height)
        x2, y2 = min(max(d.x2, 0.0), width), min(max(d.y2, 0.0), height)
        if x2 > x1 and y2 > y1:
            out.append(Detection(x1, y1, x2, y2, d.score, d.category))
    return out


def road_band_tiles(
    height: int,
    width: int,
    band: tuple[float, float] = ROAD_BAND,
    aspect: float = TILE_ASPECT,
    overlap: float = TILE_OVERLAP,
) -> list[tuple[int, ...]]:
    """Tiles (y0, y1, x0, x1) covering rows band[0]..band[1] of the height across the whole width:
    each tile_w = aspect x band height, neighbours overlapping by >= `overlap` of tile_w."""
    y0, y1 = round(band[0] * height), round(band[1] * height)
    tile_w = min(width, round((y1 - y0) * aspect))
    n = 1 if tile_w >= width else int(np.ceil((width - tile_w) / (tile_w * (1 - overlap)))) + 1
    starts = np.linspace(0, width - tile_w, n).round().astype(int) if n > 1 else [0]
    return [(y0, y1, int(x0), int(x0) + tile_w) for x0 in starts]


def merge_detections(detections: list[Detection], nms_iou: float = 0.45) -> list[Detection]:
    """NMS within each MERGE_GROUPS group (best score kept), best first."""
    kept: list[Detection] = []
    for d in sorted(detections, key=lambda d: -d.score):
        group = MERGE_GROUPS.get(d.category, d.category)
        if not any(MERGE_GROUPS.get(k.category, k.category) == group and iou(d, k) > nms_iou for k in kept):
            kept.append(d)
    return kept


def detect_road_band(
    detector: Detector,
    frame_rgb: np.ndarray,
    band: tuple[float, float] = ROAD_BAND,
    aspect: float = TILE_ASPECT,
    overlap: float = TILE_OVERLAP,
) -> list[Detection]:
    """uint8 RGB [H,W,3] -> detections of the full frame plus of overlapping road-band tiles (each
    seen larger, which finds small and night cars), in frame pixels, merged by group-wise NMS.
    A tile's box that touches a tile side inside the frame is cut off: dropped (a neighbour tile or
    the full frame sees the whole object)."""
    h, w = frame_rgb.shape[:2]
    found = detector.detect(frame_rgb)
    for y0, y1, x0, x1 in road_band_tiles(h, w, band, aspect, overlap):
        for d in detector.detect(frame_rgb[y0:y1, x0:x1]):
            cut = (
                (x0 > 0 and d.x1 <= 1)
                or (x1 < w and d.x2 >= x1 - x0 - 1)
                or (y0 > 0 and d.y1 <= 1)
                or (y1 < h and d.y2 >= y1 - y0 - 1)
            )
            if not cut:
                found.append(Detection(d.x1 + x0, d.y1 + y0, d.x2 + x0, d.y2 + y0, d.score, d.category))
    return merge_detections(found, detector.nms_iou)


def iou(a, b) -> float:
    """IoU of two boxes with x1, y1, x2, y2 attributes (Detection, Box)."""
    w = min(a.x2, b.x2) - max(a.x1, b.x1)
    h = min(a.y2, b.y2) - max(a.y1, b.y1)
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter
    return inter / union if union > 0 else 0.0
