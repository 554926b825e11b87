"""Video LDM core: untrained tiny models (random weights), checked for structure, not quality."""

import pytest
import torch
from conftest import TINY_UNET
from einops import rearrange
from torch.utils.data import default_collate

from conditioners import BoxEncoder, ConditionDropout, SceneEmbedding
from conditioners.dropout import null_conditions
from conditioners.layout import rasterize_boxes
from drivesim.data.conditions import clip_conditions
from drivesim.data.labels import Box
from drivesim.diffusion.guidance import GuidanceScales, combine, guided_prediction
from drivesim.diffusion.samplers import SAMPLERS, SamplerConfig, sample
from drivesim.diffusion.schedule import ScheduleConfig, noise_clips, training_scheduler, velocity
from drivesim.models.temporal_layers import is_temporal, spatial_parameters, temporal_parameters
from drivesim.models.unet import UNetConfig, VideoUNet

T, H, W = 4, 8, 16


def conditions(batch: int = 2, frames: int = T) -> dict[str, torch.Tensor]:
    items = []
    for i in range(batch):
        boxes = [
            [Box(10 + f + i, 40, 30 + f, 60, track_id=1), Box(50, 45, 70, 70, track_id=2)]
            for f in range(frames)
        ]
        items.append(clip_conditions(boxes, (128, 256), ("day", "night")[i % 2], "light", 30.0, max_boxes=4))
    return default_collate(items)


def perturb_temporal(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in temporal_parameters(model):
            p.add_(torch.randn(p.shape, generator=g) * 0.05)


@pytest.fixture(scope="module")
def image_model() -> VideoUNet:
    torch.manual_seed(0)
    model = VideoUNet(TINY_UNET).eval()
    with torch.no_grad():  # make the spatial net non-trivial (diffusers zero-inits conv_out)
        for p in spatial_parameters(model):
            p.add_(torch.randn_like(p) * 0.02)
    return model


def test_inflated_model_equals_image_model_frame_by_frame(image_model):
    video = VideoUNet.from_image_unet(image_model).eval()
    x, t, cond = torch.randn(2, T, 4, H, W), torch.tensor([3, 700]), conditions()
    with torch.no_grad():
        out = video(x, t, cond)
        per_frame = torch.stack(
            [
                image_model(
                    x[:, i : i + 1],
                    t,
                    {
                        **cond,
                        "boxes": cond["boxes"][:, i : i + 1],
                        "box_class": cond["box_class"][:, i : i + 1],
                        "box_mask": cond["box_mask"][:, i : i + 1],
                    },
                    image_only=True,
                )[:, 0]
                for i in range(T)
            ],
            1,
        )
    assert out.abs().mean() > 0
    torch.testing.assert_close(out, per_frame, atol=1e-4, rtol=1e-4)


def test_temporal_layers_mix_frames_and_image_only_switch(image_model):
    video = VideoUNet.from_image_unet(image_model).eval()
    perturb_temporal(video)
    x, t, cond = torch.randn(1, T, 4, H, W), torch.tensor([500]), conditions(1)
    with torch.no_grad():
        base = video(x, t, cond)
        x2 = x.clone()
        x2[:, -1] += 1.0  # change the last frame only
        changed = video(x2, t, cond)
        assert (changed[:, 0] - base[:, 0]).abs().max() > 1e-4  # frame 0 sees frame 3
        image_only = video(x2, t, cond, image_only=True)
        ref = image_model(x2, t, cond, image_only=True)
    torch.testing.assert_close(image_only, ref)


def test_temporal_parameters_share_a_prefix(image_model):
    names = [n for n, _ in image_model.named_parameters()]
    temporal = [n for n in names if is_temporal(n)]
    assert temporal and all(n.startswith("temporal_") for n in temporal)
    spatial_prefixes = ("unet.", "scene.", "boxes.", "scene_tokens.")
    assert all(n.startswith(spatial_prefixes) for n in names if not is_temporal(n))
    total = sum(p.numel() for p in image_model.parameters())
    assert total == sum(p.numel() for p in temporal_parameters(image_model)) + sum(
        p.numel() for p in spatial_parameters(image_model)
    )


def test_video_step_leaves_spatial_parameters_unchanged(image_model):
    video = VideoUNet.from_image_unet(image_model).train()
    for p in spatial_parameters(video):
        p.requires_grad_(False)
    before = {n: p.detach().clone() for n, p in video.named_parameters()}
    opt = torch.optim.AdamW(temporal_parameters(video), lr=1e-2)
    sched = training_scheduler(ScheduleConfig())
    noisy, t, target = noise_clips(sched, torch.randn(2, T, 4, H, W), torch.Generator().manual_seed(1))
    loss = (video(noisy, t, conditions()) - target).pow(2).mean()
    loss.backward()
    opt.step()
    for n, p in video.named_parameters():
        if is_temporal(n):
            continue
        assert torch.equal(p, before[n]), n
    assert any(not torch.equal(p, before[n]) for n, p in video.named_parameters() if is_temporal(n))


def test_one_noise_level_per_clip():
    sched = training_scheduler(ScheduleConfig(prediction_type="v_prediction"))
    latents = torch.randn(3, 5, 4, 2, 2)
    noisy, t, target = noise_clips(sched, latents, torch.Generator().manual_seed(0))
    assert t.shape == (3,)
    alpha = sched.alphas_cumprod[t].sqrt().view(3, 1, 1, 1, 1)
    sigma = (1 - sched.alphas_cumprod[t]).sqrt().view(3, 1, 1, 1, 1)
    noise = (noisy - alpha * latents) / sigma  # recovered noise is consistent on every frame
    torch.testing.assert_close(target, alpha * noise - sigma * latents, atol=1e-4, rtol=1e-4)


def test_einops_layouts_round_trip():
    x = torch.randn(2, 3, 5, 4, 6)  # b t c h w
    spatial = rearrange(x, "b t c h w -> (b t) c h w")
    temporal = rearrange(spatial, "(b t) c h w -> (b h w) t c", t=3)
    assert temporal.shape == (2 * 4 * 6, 3, 5)
    assert torch.equal(temporal[0, :, 0], x[0, :, 0, 0, 0])
    back = rearrange(temporal, "(b h w) t c -> b t c h w", b=2, h=4)
    assert torch.equal(back, x)


def test_cfg_scale_one_equals_conditional(image_model):
    video = VideoUNet.from_image_unet(image_model).eval()
    perturb_temporal(video)
    x, t, cond = torch.randn(2, T, 4, H, W), torch.tensor([100, 900]), conditions()
    with torch.no_grad():
        guided = guided_prediction(video, x, t, cond, GuidanceScales(scene=1.0, boxes=1.0))
        conditional = video(x, t, cond)
        strong = guided_prediction(video, x, t, cond, GuidanceScales(scene=4.0, boxes=2.0))
    torch.testing.assert_close(guided, conditional, atol=1e-4, rtol=1e-4)
    assert (strong - conditional).abs().max() > 1e-4


def test_frame_ramp_scales_guidance_per_frame():
    u, s, f = torch.zeros(1, 3, 1, 1, 1), torch.ones(1, 3, 1, 1, 1), 2 * torch.ones(1, 3, 1, 1, 1)
    out = combine(u, s, f, GuidanceScales(scene=2.0, boxes=0.0, frame_ramp=(0.0, 1.0)))
    torch.testing.assert_close(out.flatten(), torch.tensor([0.0, 1.0, 2.0]))


def test_dropped_conditions_reach_the_null_embedding():
    scene = SceneEmbedding(8)
    cond = conditions(4)
    dropped = ConditionDropout(time_of_day=1.0, crowdedness=1.0, boxes=1.0)(cond)
    assert (dropped["time_of_day"] == -1).all() and not dropped["box_mask"].any()
    emb = scene(dropped["time_of_day"], dropped["crowdedness"])
    null = scene.time_of_day.weight[-1] + scene.crowdedness.weight[-1]
    torch.testing.assert_close(emb, null.expand(4, -1))
    kept = ConditionDropout(0.0, 0.0, 0.0)(cond)
    assert torch.equal(kept["time_of_day"], cond["time_of_day"])
    boxes = BoxEncoder(8)
    tokens = boxes(dropped["boxes"], dropped["box_class"], dropped["box_mask"])
    torch.testing.assert_close(tokens, boxes.null_token.expand_as(tokens))
    half = ConditionDropout(0.5, 0.5, 0.5)(conditions(400), torch.Generator().manual_seed(0))
    assert 0.35 < (half["time_of_day"] == -1).float().mean() < 0.65


def test_box_tokens_are_permutation_invariant_through_cross_attention(image_model):
    cond = conditions(1)
    perm = torch.tensor([1, 0, 2, 3])
    swapped = {**cond, **{k: cond[k][:, :, perm] for k in ("boxes", "box_class", "box_mask")}}
    x, t = torch.randn(1, T, 4, H, W), torch.tensor([300])
    with torch.no_grad():
        a, b = image_model(x, t, cond), image_model(x, t, swapped)
        c = image_model(x, t, null_conditions(cond, scene=False))
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert (a - c).abs().max() > 1e-5  # boxes do reach the network


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_sampling_is_seeded_deterministic(image_model, sampler):
    cfg = ScheduleConfig()
    cond = conditions(1)

    def denoise(x, t):
        return image_model(x, t, cond)

    with torch.no_grad():
        a, b, c = (
            sample(
                denoise,
                (1, T, 4, H, W),
                SamplerConfig(sampler, steps=3),
                cfg,
                torch.Generator().manual_seed(seed),
            )
            for seed in (7, 7, 8)
        )
    assert torch.equal(a, b) and not torch.equal(a, c) and torch.isfinite(a).all()


def test_paper_profile_builds_on_meta_device():
    with torch.device("meta"):
        model = VideoUNet(UNetConfig.paper())
    spatial = sum(p.numel() for p in spatial_parameters(model))
    temporal = sum(p.numel() for p in temporal_parameters(model))
    assert 800e6 < spatial < 1000e6  # SD 1.x UNet is 860 M
    assert 0.2 * spatial < temporal < spatial


def test_gradient_checkpointing_gives_the_same_gradients(image_model):
    video = VideoUNet.from_image_unet(image_model).train()
    perturb_temporal(video)
    x, t, cond = torch.randn(1, T, 4, H, W), torch.tensor([250]), conditions(1)
    grads = []
    for checkpointing in (False, True):
        video.zero_grad()
        video.gradient_checkpointing = checkpointing
        video(x, t, cond).pow(2).mean().backward()
        grads.append([p.grad.clone() for p in temporal_parameters(video)])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_spatial_path_equals_diffusers_unet_forward(image_model):
    """Our block walk with temporal layers off is exactly diffusers' UNet2DConditionModel."""
    cond = conditions(2, 1)
    x, t = torch.randn(2, 1, 4, H, W), torch.tensor([300, 20])
    with torch.no_grad():
        ours = image_model(x, t, cond, image_only=True)[:, 0]
        scene = image_model.scene(cond["time_of_day"], cond["crowdedness"])
        tokens = torch.cat(
            [
                image_model.boxes(cond["boxes"], cond["box_class"], cond["box_mask"]),
                image_model.scene_tokens.tokens(cond["time_of_day"], cond["crowdedness"]),
            ],
            1,
        )
        layout = rasterize_boxes(cond["boxes"], cond["box_class"], cond["box_mask"], (H, W))
        reference = image_model.unet(
            torch.cat([x[:, 0], layout], 1), t, encoder_hidden_states=tokens, class_labels=scene
        ).sample
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("zero_snr", [True, False])
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_sdedit_start_runs_steps_from_the_strength_level(sampler, zero_snr):
    cfg = (
        ScheduleConfig()
        if zero_snr
        else ScheduleConfig(
            prediction_type="epsilon", rescale_betas_zero_snr=False, timestep_spacing="leading"
        )
    )
    alphas = training_scheduler(cfg).alphas_cumprod
    target = torch.randn(1, T, 4, H, W)
    calls = []

    def oracle(x, t):  # the exact eps (or v) for clean latents `target`
        calls.append(float(t[0]))
        ab = alphas[round(float(t[0]))]
        eps = (x - ab.sqrt() * target) / (1 - ab).sqrt()
        return velocity(target, eps, ab) if cfg.prediction_type == "v_prediction" else eps

    seeded = lambda: torch.Generator().manual_seed(0)

    def from_start(start, strength):  # 4 steps, seed 0
        return sample(
            oracle, target.shape, SamplerConfig(sampler, 4, strength=strength), cfg, seeded(), start=start
        )

    guess = target + 0.3 * torch.randn_like(target)
    out = from_start(guess, 0.5)
    assert len(calls) == 4 and 350 <= calls[0] <= 560  # about half-way up the schedule, 4 model calls
    # DDIM ends at t=0's noise level (set_alpha_to_one=False), hence a small tolerance
    assert (out - target).abs().mean() < 0.05 < 0.2 < (guess - target).abs().mean()
    calls.clear()
    full = from_start(target, 1.0)
    plain = sample(oracle, target.shape, SamplerConfig(sampler, 4), cfg, seeded())
    assert calls[0] > 700 and torch.equal(full, plain)  # strength 1 = pure noise, the start is unused
    with pytest.raises(ValueError, match="strength"):
        sample(oracle, target.shape, SamplerConfig(sampler, 4, strength=0.0), cfg, start=target)
    with pytest.raises(ValueError, match="start guess"):
        sample(oracle, target.shape, SamplerConfig(sampler, 4, strength=0.5), cfg)


def test_mixed_starting_noise_shares_the_given_fraction():
    from drivesim.diffusion.noise import mixed_noise

    g = torch.Generator().manual_seed(0)
    x = mixed_noise((64, 2, 4, 16, 16), g, 0.8)
    a, b = x[:, 0].flatten(), x[:, 1].flatten()
    assert a.var().item() == pytest.approx(1.0, abs=0.03)
    assert torch.corrcoef(torch.stack([a, b]))[0, 1].item() == pytest.approx(0.8, abs=0.02)
    assert torch.equal(
        mixed_noise((1, 2, 3), torch.Generator().manual_seed(1), 0.8),
        torch.randn((1, 2, 3), generator=torch.Generator().manual_seed(1)),
    )
