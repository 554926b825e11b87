"""Does a real-photo detector still find the world's vehicles after the autoencoder?

The first gate of generated realism: a key-frame model cannot make a car its decoder cannot
draw. Held-out day world clips are rendered at the output size with their exact labels, and the
detector's box hit (detector_score) is read on four versions of each frame, all brought back to
the output size by bicubic: as rendered, at the base size (area down, the ceiling of a perfect
base-size model), and through the autoencoder at the base size with the image decoder and with
the temporal decoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from tqdm import tqdm

from drivesim.eval.autoencoder import load_decoders
from drivesim.eval.detector import Detector
from drivesim.eval.detector_score import AP_CONF, DetectorTally
from drivesim.utils import HELD_OUT_SEED, resolve_device, to_uint8
from drivesim.world import World, WorldSpec


@torch.no_grad()
def round_trip_detector(
    autoencoder: str,
    temporal_decoder: str | None = None,
    clips: int = 8,
    num_frames: int = 8,
    every: int = 2,
    size: tuple[int, int] = (512, 1024),
    base: tuple[int, int] = (128, 256),
    crowdedness: str = "moderate",
    detector: Detector | None = None,
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> dict:
    """Detector summaries {rendered, base, image[, temporal]} over `clips` held-out day clips."""
    device = resolve_device(device)
    ae, td = load_decoders(autoencoder, temporal_decoder, device)
    detector = detector or Detector(conf=AP_CONF)
    tallies: dict[str, DetectorTally] = {}
    for i in tqdm(range(clips), desc="round trip + detector", disable=not progress):
        spec = WorldSpec(
            crowdedness=crowdedness,
            num_frames=num_frames,
            height=size[0],
            width=size[1],
            seed=HELD_OUT_SEED + i,
        )
        images, labels = zip(*World(spec).frames())
        frames = torch.stack([torch.from_numpy(im) for im in images])
        x = rearrange(frames, "t h w c -> t c h w").float().div(127.5).sub(1).to(device)
        low = F.interpolate(x, size=base, mode="area")
        z = ae.encode(low).mode()
        versions = {"rendered": x, "base": low, "image": ae.decode(z)}
        if td is not None:
            versions["temporal"] = td.decode_chunked(z[None])[0]
        for name, video in versions.items():
            if video.shape[-2:] != size:
                video = F.interpolate(video, size=size, mode="bicubic")
            pixels = to_uint8(video)
            tally = tallies.setdefault(name, DetectorTally())
            for t in range(0, num_frames, every):
                tally.add(detector.detect(pixels[t]), labels[t].boxes)
    report = {name: tally.summary() for name, tally in tallies.items()}
    return {
        "paths": report,
        "clips": clips,
        "num_frames": num_frames,
        "every": every,
        "crowdedness": crowdedness,
        "size": list(size),
        "base": list(base),
        "seed": HELD_OUT_SEED,
    }
