"""Do the prediction and interpolation models follow their known frames when sampling?

On held-out procedural clips (real latents as context), for each SDEdit start strength:
- prediction: 2 real context frames at 7.5 fps, 6 new key frames sampled. Reports the latent
  MSE of the new frames to the real ones, the pixel step from the last context frame to the
  first new frame (a segment seam), the mean step between new frames, the real clips' mean
  step, their ratio (seam / real, of the means over clips: single clips differ in speed, so
  the default is 32 clips), and |mean brightness of new frames - context|.
- interpolation (stage 2): real key frames 0 and 4 of 30 fps clips, frames 1-3 sampled.
  Reports their latent MSE to the real frames next to the linear blend of the key latents,
  and the mean pixel step of the window next to the real one.
Pixel values are 0-255; steps are mean |frame t+1 - frame t|.
"""

from __future__ import annotations

import torch
from einops import repeat
from tqdm import tqdm

from drivesim.data.conditions import PER_FRAME_KEYS
from drivesim.diffusion.guidance import GuidanceScales
from drivesim.eval.denoising import heldout_caches


def _clip(data, i: int, frames: int) -> tuple[torch.Tensor, dict]:
    latents, cond = data[i]
    return latents[None, :frames], {
        k: v[None, :frames] if k in PER_FRAME_KEYS else v[None] for k, v in cond.items()
    }


def _steps(frames: torch.Tensor) -> torch.Tensor:
    """[1,T,3,H,W] in [-1,1] -> [T-1] mean |step| in 0-255."""
    return (frames[0, 1:] - frames[0, :-1]).abs().mean(dim=(1, 2, 3)) * 127.5


@torch.no_grad()
def real_steps(pipe, data, clips: int, frames: int) -> list[float]:
    """Mean decoded pixel step of the first `frames` real frames of each held-out clip."""
    return [float(_steps(pipe.decode(_clip(data, i, frames)[0])).mean()) for i in range(clips)]


@torch.no_grad()
def prediction_use(
    pipe,
    data,
    clips: int,
    steps: int,
    guidance: GuidanceScales,
    strength: float,
    real: list[float],
    context: int = 2,
) -> dict[str, float]:
    """Sample 8 - context key frames after `context` real ones, per held-out clip -> mean metrics;
    real = real_steps(..., frames=8)."""
    rows = []
    for i in range(clips):
        latents, cond = _clip(data, i, 8)
        latents = latents.to(pipe.device)
        mask = (torch.arange(8, device=pipe.device) < context).float()[None]
        start = repeat(latents[:, context - 1], "b c h w -> b t c h w", t=8)
        out = pipe(
            cond,
            8,
            latent_size=tuple(latents.shape[-2:]),
            sampler="dpmpp",
            steps=steps,
            guidance=guidance,
            seed=i,
            decode=False,
            context_latents=latents,
            context_mask=mask,
            start_latents=start,
            strength=strength,
        ).latents
        gen = pipe.decode(out)
        step, gap = _steps(gen), (gen[:, context:].mean() - gen[:, :context].mean()).abs() * 127.5
        rows.append(
            {
                "latent_mse_new": float(((out - latents)[:, context:] ** 2).mean()),
                "step_context_to_new": float(step[context - 1]),
                "step_new": float(step[context:].mean()),
                "step_real": real[i],
                "brightness_gap": float(gap),
            }
        )
    out = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
    return {**out, "step_ratio": out["step_context_to_new"] / out["step_real"]}


@torch.no_grad()
def interpolation_use(
    pipe, data, clips: int, steps: int, strength: float, real: list[float]
) -> dict[str, float]:
    """Fill frames 1-3 between real key frames 0 and 4 (stage 2), per held-out clip -> mean metrics;
    real = real_steps(..., frames=5); strength 0 = the linear blend, as the rollout's default."""
    from drivesim.pipelines.rollout import key_blend

    rows = []
    mask = torch.tensor([[1.0, 0, 0, 0, 1]], device=pipe.device)
    for i in range(clips):
        latents, cond = _clip(data, i, 5)
        latents = latents.to(pipe.device)
        blend = key_blend(latents)
        out = (
            blend
            if strength == 0
            else pipe(
                cond,
                5,
                latent_size=tuple(latents.shape[-2:]),
                sampler="dpmpp",
                steps=steps,
                guidance=GuidanceScales(1.0, 1.0),
                seed=i,
                decode=False,
                context_latents=latents,
                context_mask=mask,
                stage=2,
                start_latents=blend,
                strength=strength,
            ).latents
        )
        rows.append(
            {
                "latent_mse": float(((out - latents)[:, 1:4] ** 2).mean()),
                "latent_mse_linear_blend": float(((blend - latents)[:, 1:4] ** 2).mean()),
                "step": float(_steps(pipe.decode(out)).mean()),
                "step_real": real[i],
            }
        )
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}


def context_use_report(
    model_dir: str,
    strengths: tuple[float, ...] = (1.0, 0.8, 0.5),
    cache_dir: str = "runs/latents",
    clips: int = 32,
    steps: int = 12,
    interpolation_steps: int = 6,
    guidance_context: float = 1.5,
    progress: bool = True,
    device: str = "cpu",
) -> dict[str, dict[str, float]]:
    """{"prediction s=<strength>": metrics, "interpolation s=<strength>": metrics} for a model folder."""
    from drivesim.pipelines.cascade import Cascade

    caches = heldout_caches(model_dir, cache_dir, clips)
    cascade = Cascade.from_pretrained(model_dir, device=device)
    prediction, interpolation = cascade.key_model, cascade.interpolation
    guidance = GuidanceScales(2.0, 1.5, context=guidance_context)
    n_key, n_fast = min(clips, len(caches[7.5])), min(clips, len(caches[30.0]))
    real_key = real_steps(prediction, caches[7.5], n_key, 8)  # the real clips, decoded once
    real_fast = real_steps(prediction, caches[30.0], n_fast, 5)
    out = {}
    for s in tqdm(strengths, desc="context use", disable=not progress):
        if s > 0:  # strength 0 is the interpolation's linear blend; a prediction needs noise
            out[f"prediction s={s:g}"] = prediction_use(
                prediction, caches[7.5], n_key, steps, guidance, s, real_key
            )
        out[f"interpolation s={s:g}"] = interpolation_use(
            interpolation, caches[30.0], n_fast, interpolation_steps, s, real_fast
        )
    return out
