"""`drivesim eval report`: one command, one JSON + Markdown report comparing video sets.

Sets: `real` (procedural hold-out clips or a folder of real videos with Scalabel labels),
`reconstructed` (the real clips through the autoencoder, if one is given) and `generated`
(sampled by a model for the real clips' conditions, or a folder of generated clips with
labels). For each set: probe condition adherence, temporal metrics, and distances to the
real set (built-in probe Frechet distance always; FID / FVD when their weights are given); for
the real and generated sets, a real-photo detector's agreement with their boxes when its
weights are there (drivesim.eval.detector_score).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import default_collate
from tqdm import tqdm

from drivesim.data.conditions import Conditions
from drivesim.eval.adherence import DEFAULT_PROBES, AdherenceMeter, load_probes
from drivesim.eval.detector import Detector, default_detector_path
from drivesim.eval.detector_score import AP_CONF, tally_clips
from drivesim.eval.frechet import FeatureStats, frechet_from_stats
from drivesim.metrics import temporal_report
from drivesim.models.autoencoder import AutoencoderKL
from drivesim.models.model_index import load_part
from drivesim.pipelines.cascade import Cascade
from drivesim.utils import DEFAULT_MODEL_DIR, HELD_OUT_SEED, write_json_atomic

RESIZE_PROTOCOL = {
    "probe_fd": "frames resized (area) to 64x128, all frames of each clip, probe features [128]",
    "fid": "every frame resized (bilinear, no crop) to 299x299, Inception-v3 pool3 [2048]",
    "fvd": "every frame resized (bilinear, no crop) to 224x224, I3D logits [400] per clip",
    "detector_*": "YOLOX-nano on every frame at its own size; labelled cars >= 24 px high, IoU >= 0.5",
}


@dataclass(frozen=True)
class VideoSetConfig:
    source: str = "procedural"  # procedural | folder | model
    root: str | None = None  # folder of videos (+ same-stem Scalabel .json) for source=folder
    clips: int = 16
    num_frames: int = 8
    fps: float = 7.5
    size: tuple[int, int] = (128, 256)
    seed: int = HELD_OUT_SEED  # procedural layouts (source=procedural) or sampling seed (model)


@dataclass(frozen=True)
class EvalConfig:
    real: VideoSetConfig = field(default_factory=VideoSetConfig)
    generated: VideoSetConfig = field(default_factory=lambda: VideoSetConfig(source="model", seed=0))
    model: str | None = None  # model folder for source=model (None: the shipped tiny model)
    reconstruct: bool = True  # add the autoencoder reconstruction of the real set
    steps: int = 25
    sampler: str = "dpmpp"
    guidance_scene: float = 2.0
    guidance_boxes: float = 1.5
    frame_correlation: float | None = None  # None: the noise prior the model trained with
    probes: str | None = None  # probe folder (None: the shipped drivesim/assets/eval)
    fid_weights: str | None = None  # pt_inception-2015-12-05-6726825d.pth
    fvd_weights: str | None = None  # rgb_imagenet.pt (I3D)
    detector: str | None = None  # YOLOX-nano ONNX (None: default_detector_path(), skipped if absent)
    out: str = "outputs/eval"
    device: str = "cpu"  # where the model samples and decodes (cpu | cuda); metrics run on the CPU


def load_video_set(cfg: VideoSetConfig) -> list[tuple[torch.Tensor, Conditions]]:
    """Clips of a real or folder set -> [(frames [T,3,H,W], cond)]."""
    if cfg.source == "procedural":
        from drivesim.data.procedural import ProceduralClipDataset

        data = ProceduralClipDataset(
            length=cfg.clips, num_frames=cfg.num_frames, fps=cfg.fps, size=cfg.size, seed=cfg.seed
        )
    elif cfg.source == "folder":
        if not cfg.root:
            raise ValueError("source=folder needs root=<folder of videos with same-stem .json labels>")
        from drivesim.data.video_folder import VideoFolderDataset

        data = VideoFolderDataset(
            cfg.root, num_frames=cfg.num_frames, fps=cfg.fps, size=cfg.size, stride_s=cfg.num_frames / cfg.fps
        )
    else:
        raise ValueError(f"source={cfg.source!r}: use procedural, folder or model")
    return [data[i] for i in range(min(cfg.clips, len(data)))]


def generate_set(cfg: EvalConfig, pipe, conditions: list[Conditions], progress: bool) -> tuple[list, dict]:
    """Sample one clip per condition dict with the pipeline -> (clips, model versions)."""
    from drivesim.diffusion.guidance import GuidanceScales

    guidance = GuidanceScales(scene=cfg.guidance_scene, boxes=cfg.guidance_boxes)
    clips = []
    for i, cond in enumerate(tqdm(conditions, desc="generate", disable=not progress)):
        out = pipe(
            default_collate([cond]),
            cfg.generated.num_frames,
            sampler=cfg.sampler,
            steps=cfg.steps,
            guidance=guidance,
            seed=cfg.generated.seed + i,
            frame_correlation=cfg.frame_correlation,
        )
        clips.append((out.frames[0].cpu(), cond))
    return clips, pipe.versions


@torch.no_grad()
def reconstruct_set(clips: list, pipe, model_dir: Path) -> tuple[list, dict]:
    """The real clips through the model folder's autoencoder encoder + the pipeline's decoder."""
    ae = load_part(model_dir, "autoencoder", AutoencoderKL).to(pipe.device).eval()
    out = [
        (pipe.decode(ae.encode(frames.to(pipe.device)).mode()[None])[0].cpu(), cond) for frames, cond in clips
    ]
    return out, {"decoder": pipe.versions.get("decoder", "")}


def evaluate_set(clips: list, fps: float, probes, feature_nets: dict) -> tuple[dict, dict]:
    """Adherence + temporal metrics of one set -> (metrics, feature stats per network)."""
    meter = AdherenceMeter(*probes)
    temporal: dict[str, list[float]] = {}
    stats = {name: FeatureStats() for name in ["probe", *feature_nets]}
    for frames, cond in clips:
        meter.update(frames[None], default_collate([cond]))
        for k, v in temporal_report(frames, fps).items():
            if isinstance(v, float):
                temporal.setdefault(k, []).append(v)
        with torch.no_grad():
            for name, net in feature_nets.items():
                stats[name].update(net(frames) if name == "fid" else net(frames[None]))
    stats["probe"].update(meter.all_features())
    metrics = {**meter.report(), **{k: sum(v) / len(v) for k, v in temporal.items()}}
    return metrics, stats


def load_feature_nets(cfg: EvalConfig) -> dict:
    """FID / FVD networks from the user's local weight files (never downloaded)."""
    nets = {}
    if cfg.fid_weights:
        from drivesim.eval.networks.inception import load_fid_inception

        nets["fid"] = load_fid_inception(cfg.fid_weights)
    if cfg.fvd_weights:
        from drivesim.eval.networks.i3d import load_i3d

        nets["fvd"] = load_i3d(cfg.fvd_weights)
    return nets


def run_eval(cfg: EvalConfig, progress: bool = True) -> dict:
    """Build the sets, measure them, write report.json + report.md into cfg.out; returns the report."""
    start = time.perf_counter()
    probes = load_probes(cfg.probes or DEFAULT_PROBES)
    nets = load_feature_nets(cfg)
    sets = {"real": (load_video_set(cfg.real), {})}
    model_dir = Path(cfg.model or DEFAULT_MODEL_DIR)
    needs_model = cfg.reconstruct or cfg.generated.source == "model"
    pipe = (
        Cascade.from_pretrained(model_dir, key_model="unet", interpolation=False, device=cfg.device).key_model
        if needs_model
        else None
    )
    if cfg.reconstruct:
        sets["reconstructed"] = reconstruct_set(sets["real"][0], pipe, model_dir)
    if cfg.generated.source == "model":
        sets["generated"] = generate_set(cfg, pipe, [c for _, c in sets["real"][0]], progress)
    else:
        sets["generated"] = (load_video_set(cfg.generated), {})
    results, stats = {}, {}
    for name, (clips, versions) in tqdm(sets.items(), desc="measure", disable=not progress):
        fps = cfg.real.fps if name != "generated" else cfg.generated.fps
        results[name], stats[name] = evaluate_set(clips, fps, probes, nets)
        results[name].update(clips=len(clips), frames=int(clips[0][0].shape[0]), versions=versions)
    for name in results:
        if name == "real":
            continue
        for net, real_stats in stats["real"].items():
            key = {"probe": "probe_fd", "fid": "fid", "fvd": "fvd"}[net]
            results[name][key] = frechet_from_stats(real_stats, stats[name][net])
    detector_path = Path(cfg.detector) if cfg.detector else default_detector_path()
    if cfg.detector or detector_path.is_file():  # a path given but missing is an error
        detector = Detector(detector_path, conf=AP_CONF)
        for name in ("real", "generated"):
            summary = tally_clips(sets[name][0], detector).summary()
            results[name].update(
                {f"detector_{k}": summary[k] for k in ("box_hit_rate", "ap50", "vehicle_frame_share")}
            )
    report = {
        "config": _jsonable(asdict(cfg)),
        "protocol": RESIZE_PROTOCOL,
        "sets": results,
        "notes": _notes(cfg, detector_path),
        "seconds": time.perf_counter() - start,
    }
    write_report(report, Path(cfg.out))
    return report


def _notes(cfg: EvalConfig, detector_path: Path) -> list[str]:
    notes = [
        "probe_fd uses drivesim's probe network trained on procedural clips: it is NOT "
        "comparable to literature FVD/FID.",
        "real-set accuracies are the probes' own accuracy on true labels.",
    ]
    if not cfg.fid_weights:
        notes.append("FID skipped: pass fid_weights=<pt_inception-2015-12-05-6726825d.pth>.")
    if not cfg.fvd_weights:
        notes.append("FVD skipped: pass fvd_weights=<rgb_imagenet.pt> (I3D).")
    if not detector_path.is_file():
        notes.append(
            f"detector figures skipped: no YOLOX-nano weights at {detector_path} "
            "(pass detector=<yolox_nano.onnx>)."
        )
    return notes


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def write_report(report: dict, out: Path) -> None:
    """report.json and report.md in `out`, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(report, out / "report.json")
    tmp = out / ".report.md.tmp"
    tmp.write_text(to_markdown(report))
    tmp.replace(out / "report.md")


def to_markdown(report: dict) -> str:
    """The report as a Markdown table (one column per set) plus protocol and notes."""
    sets = report["sets"]
    keys = [k for k in dict.fromkeys(k for s in sets.values() for k in s) if k != "versions"]
    lines = [
        "# drivesim eval report",
        "",
        "| metric | " + " | ".join(sets) + " |",
        "|---|" + "---|" * len(sets),
    ]
    for k in keys:
        cells = [_fmt(s.get(k)) for s in sets.values()]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Protocol",
        *[f"- {k}: {v}" for k, v in report["protocol"].items()],
        "",
        "## Notes",
        *[f"- {n}" for n in report["notes"]],
        "",
    ]
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)
