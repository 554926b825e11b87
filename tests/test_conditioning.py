"""Zero-terminal-SNR schedule, conditions that survive the norms, CFG branches (untrained models)."""

import dataclasses

import pytest
import torch

from conditioners import ConditionDropout
from conditioners.dropout import null_conditions
from conditioners.layout import rasterize_boxes
from drivesim.diffusion.guidance import rescale_guidance
from drivesim.diffusion.schedule import (
    ScheduleConfig,
    noise_clips,
    terminal_snr,
    training_scheduler,
    velocity,
    x0_and_eps,
)
from drivesim.models.unet import UNetConfig, VideoUNet, unet_config
from tests.test_video_ldm_core import H, T, W, conditions


def test_default_schedule_reaches_zero_terminal_snr():
    assert terminal_snr(ScheduleConfig()) == 0.0
    legacy = ScheduleConfig.from_dict({"prediction_type": "epsilon"})
    assert not legacy.rescale_betas_zero_snr and terminal_snr(legacy) > 0.004  # ~7 % signal left
    assert training_scheduler(ScheduleConfig()).alphas_cumprod[0] > 0.99


def test_zero_snr_with_eps_prediction_is_refused():
    with pytest.raises(ValueError, match="v_prediction"):
        training_scheduler(ScheduleConfig(prediction_type="epsilon"))


@pytest.mark.parametrize("prediction_type", ["v_prediction", "epsilon"])
def test_v_eps_x0_conversions_round_trip(prediction_type):
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 4, 8, 8, generator=g), torch.randn(3, 4, 8, 8, generator=g)
    a = torch.tensor([0.999, 0.3, 0.0 if prediction_type == "v_prediction" else 0.01]).view(3, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    out = velocity(x0, eps, a) if prediction_type == "v_prediction" else eps
    x0_back, eps_back = x0_and_eps(x_t, out, a, prediction_type)
    torch.testing.assert_close(x0_back, x0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(eps_back, eps, atol=1e-4, rtol=1e-4)


def test_training_target_is_diffusers_velocity_and_noise_is_clip_mixed():
    sched = training_scheduler(ScheduleConfig(frame_correlation=0.5))
    latents = torch.randn(256, 2, 4, 4, 4)
    noisy, t, target = noise_clips(sched, latents, torch.Generator().manual_seed(0), 0.5)
    a = sched.alphas_cumprod[t].view(-1, 1, 1, 1, 1)
    x0, eps = x0_and_eps(noisy, target, a, "v_prediction")
    torch.testing.assert_close(x0, latents, atol=1e-4, rtol=1e-4)
    corr = torch.corrcoef(torch.stack([eps[:, 0].flatten(), eps[:, 1].flatten()]))[0, 1]
    assert corr.item() == pytest.approx(0.5, abs=0.05)


def first_resnet_output(model: VideoUNet, cond: dict) -> torch.Tensor:
    seen = []
    handle = model.unet.down_blocks[0].resnets[0].register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        model(
            torch.randn(2, 1, 4, 8, 16, generator=torch.Generator().manual_seed(0)),
            torch.tensor([500, 500]),
            cond,
            image_only=True,
        )
    handle.remove()
    return seen[0]


def test_scene_condition_changes_the_first_resnet_block_only_with_scale_shift():
    # 32 channels in 32 groups: the finest level of the tiny profile.
    small = dict(
        block_out_channels=(32, 64),
        cross_attention=(False, True),
        cross_attention_dim=32,
        attention_head_dim=16,
        norm_num_groups=32,
        temporal_heads=2,
    )
    day, night = conditions(2, 1), conditions(2, 1)
    day["time_of_day"], night["time_of_day"] = torch.tensor([0, 0]), torch.tensor([1, 1])
    for shift, changes in (("scale_shift", True), ("default", False)):
        torch.manual_seed(0)
        model = VideoUNet(UNetConfig(resnet_time_scale_shift=shift, **small)).eval()
        gap = (first_resnet_output(model, day) - first_resnet_output(model, night)).abs().max().item()
        # "default" adds the embedding before a per-channel GroupNorm, which removes it
        assert (gap > 1e-2) if changes else (gap < 1e-4), (shift, gap)


def test_drop_all_branch_equals_the_null_conditions():
    cond = conditions(4)
    dropped = ConditionDropout(time_of_day=0.0, crowdedness=0.0, boxes=0.0, all=1.0)(cond)
    null = null_conditions(cond)
    assert dropped.keys() == null.keys()
    assert all(torch.equal(dropped[k].nan_to_num(-9), null[k].nan_to_num(-9)) for k in cond)  # ego_speed NaN
    kept = ConditionDropout(0.0, 0.0, 0.0, all=0.0)(cond)
    assert all(torch.equal(kept[k].nan_to_num(-9), cond[k].nan_to_num(-9)) for k in cond)


def test_class_dropout_drops_single_box_classes_of_class_aware_models_only():
    from conditioners.boxes import BoxEncoder

    cond = conditions(64)
    cond["box_class"] = torch.randint(
        0, 6, cond["box_class"].shape, generator=torch.Generator().manual_seed(1)
    )
    dropout = ConditionDropout(0.0, 0.0, 0.0, all=0.0, box_class=0.3)
    dropped = dropout(cond, torch.Generator().manual_seed(0), box_classes=6)
    unknown = dropped["box_class"] == -1
    assert 0.2 < unknown.float().mean() < 0.4 and torch.equal(dropped["box_mask"], cond["box_mask"])
    assert torch.equal(dropped["box_class"][~unknown], cond["box_class"][~unknown])
    one_class = dropout(cond, torch.Generator().manual_seed(0), box_classes=1)
    assert torch.equal(one_class["box_class"], cond["box_class"])  # a 1-class model keeps its inputs
    # an unknown class: the box keeps its place (layout nearness and core, its token), not its class
    boxes, mask = torch.tensor([[[[0.0, 0.0, 0.5, 0.5]]]]), torch.ones(1, 1, 1, dtype=torch.bool)
    car, unknown_layout = (
        rasterize_boxes(boxes, torch.tensor([[[k]]]), mask, (4, 8), num_classes=6) for k in (0, -1)
    )
    assert unknown_layout[0, :6].sum() == 0 and car[0, 0].sum() > 0
    assert torch.equal(unknown_layout[0, 6:], car[0, 6:])
    torch.manual_seed(0)
    encoder = BoxEncoder(16, num_classes=6)
    tokens = [encoder(boxes, torch.tensor([[[k]]]), mask)[0, 0] for k in (-1, 0, 5)]
    assert not torch.allclose(tokens[0], tokens[1]) and not torch.allclose(tokens[0], tokens[2])
    from conftest import TINY_UNET  # an UNTRAINED class-aware UNet takes a dropped batch as it is

    aware = VideoUNet(dataclasses.replace(TINY_UNET, box_classes=6)).eval()
    batch = {k: v[:2] for k, v in dropped.items()}
    with torch.no_grad():
        out = aware(torch.randn(2, T, 4, H, W), torch.tensor([10, 500]), batch)
    assert out.shape == (2, T, 4, H, W) and torch.isfinite(out).all()


def test_layout_rasterises_coverage_nearness_and_nothing_for_masked_boxes():
    boxes = torch.tensor([[[[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]]]])  # [1,1,2,4]
    box_class = torch.zeros(1, 1, 2, dtype=torch.long)
    layout = rasterize_boxes(boxes, box_class, torch.tensor([[[True, False]]]), (4, 8))
    assert layout.shape == (1, 3, 4, 8)
    cover, near, core = layout[0]
    assert cover[:2, :4].eq(1).all() and cover.sum() == 8  # the masked box draws nothing
    assert near[:2, :4].eq(0.5).all()  # bottom edge y2 of the covering box
    assert 0 < core.sum() < cover.sum()
    empty = rasterize_boxes(boxes, box_class, torch.zeros(1, 1, 2, dtype=torch.bool), (4, 8))
    assert empty.abs().sum() == 0  # the null condition of CFG


def test_cfg_rescale_restores_the_conditional_std():
    g = torch.Generator().manual_seed(0)
    guided, full = 3 * torch.randn(2, 4, 4, 8, 8, generator=g), torch.randn(2, 4, 4, 8, 8, generator=g)
    assert torch.equal(rescale_guidance(guided, full, 0.0), guided)
    out = rescale_guidance(guided, full, 1.0)
    torch.testing.assert_close(out.flatten(1).std(1), full.flatten(1).std(1), rtol=1e-4, atol=1e-4)


def test_checkpoint_configs_without_the_new_keys_load_as_before():
    old = {
        k: v
        for k, v in dataclasses.asdict(UNetConfig()).items()
        if k not in ("resnet_time_scale_shift", "scene_tokens", "box_layout")
    }
    cfg = unet_config(old)
    assert (cfg.resnet_time_scale_shift, cfg.scene_tokens, cfg.box_layout) == ("default", False, False)
    assert ScheduleConfig.from_dict({"prediction_type": "epsilon"}).timestep_spacing == "leading"
