"""`torchrun` + DDP (gloo, 2 CPU processes) for every `drivesim train` command, launched through the
real CLI: the losses of a few steps match one process on the same global batch, and a run resumes
at another world size. Untrained tiny models; a few steps each."""

import csv
import dataclasses
import os
import signal
import subprocess
import sys

import pytest
from conftest import REPO, TINY_UNET, TINY_UPSAMPLER, tiny_ae_config

from drivesim.diffusion.schedule import ScheduleConfig
from drivesim.train.autoencoder import train_autoencoder
from drivesim.train.distributed import RankBatches, Ranks, sequential_batches
from drivesim.train.ldm import LatentCacheConfig, LDMTrainConfig, train_ldm
from drivesim.train.probes import ProbeTrainConfig, train_probes
from drivesim.train.upsampler import UpsamplerTrainConfig, train_upsampler
from drivesim.train.upsampler_data import HighResCacheConfig

pytestmark = pytest.mark.slow  # every test here takes 10-30 s

TRAIN = {
    "autoencoder": train_autoencoder,
    "image-ldm": train_ldm,
    "video-ldm": train_ldm,
    "prediction": train_ldm,
    "interpolation": train_ldm,
    "upsampler": train_upsampler,
    "probes": train_probes,
}
LOSS_COLUMNS = {"autoencoder": ["rec"], "upsampler": ["loss"], "probes": ["clip_loss", "box_loss"]}


def hydra_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    raise TypeError(type(value))


def overrides(values: dict, prefix: str = "") -> list[str]:
    """A config as hydra `++key.sub=value` overrides (every field, so the CLI builds the same config)."""
    out = []
    for key, value in values.items():
        if isinstance(value, dict):
            out += overrides(value, f"{prefix}{key}.")
        else:
            out.append(f"++{prefix}{key}={hydra_value(value)}")
    return out


def torchrun(model: str, cfg, nproc: int = 2) -> None:
    """`torchrun --standalone --nproc_per_node N -m drivesim.cli train MODEL ...` with cfg's values."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "drivesim.cli",
        "train",
        model,
        *overrides(dataclasses.asdict(cfg)),
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    # its own session, so a timeout kills the ranks too, not just the torchrun agent
    run = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = run.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        out, err = run.communicate()
        pytest.fail(f"torchrun {model} did not finish in 180 s:\n{out[-3000:]}{err[-3000:]}")
    assert run.returncode == 0, out[-3000:] + err[-3000:]


def losses(out: str, model: str) -> list[float]:
    """The logged losses, step by step (each of the model's loss columns)."""
    with open(f"{out}/loss.csv") as f:
        return [float(r[c]) for r in csv.DictReader(f) for c in LOSS_COLUMNS.get(model, ["loss"])]


def two_ranks_match_one(model: str, cfg, tmp_path, steps: int = 2) -> None:
    """Steps 1..steps on 2 ranks equal one process; one more step resumed on 1 rank equals one
    process resumed the same way (the autoencoder resets its optimizer on resume, both do)."""
    one = dataclasses.replace(cfg, out_dir=str(tmp_path / f"{model}-1"), steps=steps)
    two = dataclasses.replace(cfg, out_dir=str(tmp_path / f"{model}-2"), steps=steps)
    TRAIN[model](one, progress=False)
    torchrun(model, two)
    for run in (one, two):
        TRAIN[model](dataclasses.replace(run, steps=steps + 1), progress=False)  # resume on 1 rank
    expected, got = losses(one.out_dir, model), losses(two.out_dir, model)
    assert len(expected) == len(got) == (steps + 1) * len(LOSS_COLUMNS.get(model, ["loss"]))
    assert got == pytest.approx(expected, rel=1e-3, abs=1e-5)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Image autoencoder -> latent caches (key rate and 4x) -> image -> video -> prediction LDM,
    each a 1-step untrained start for the next stage."""
    root = tmp_path_factory.mktemp("ddp")
    ae = train_autoencoder(tiny_ae_config(root / "ae", batch_size=2, num_frames=3), progress=False)
    cache = lambda name, fps: LatentCacheConfig(
        path=str(root / f"{name}.safetensors"),
        autoencoder=str(ae),
        clips=4,
        num_frames=5,
        fps=fps,
        size=(64, 128),
    )
    base = LDMTrainConfig(
        latents=cache("key", 7.5), unet=TINY_UNET, steps=1, batch_size=4, log_every=1, save_every=1
    )
    image = train_ldm(dataclasses.replace(base, out_dir=str(root / "image")), progress=False)
    video = train_ldm(
        dataclasses.replace(base, stage="video", init_from=str(image), out_dir=str(root / "video")),
        progress=False,
    )
    prediction = train_ldm(
        dataclasses.replace(
            base, stage="prediction", init_from=str(video), context_channels=8, out_dir=str(root / "pred")
        ),
        progress=False,
    )
    return {
        "ae": ae,
        "base": base,
        "image": image,
        "video": video,
        "prediction": prediction,
        "fast": cache("fast", 30.0),
    }


def test_autoencoder_image_and_temporal_stages(chain, tmp_path):
    cfg = tiny_ae_config(tmp_path, batch_size=4, num_frames=3, log_every=1, save_every=1)  # out_dir: per run
    two_ranks_match_one("autoencoder", cfg, tmp_path)
    temporal = dataclasses.replace(
        cfg, stage="temporal", init_from=str(chain["ae"]), batch_size=2, motion_weight=5.0
    )
    two_ranks_match_one("autoencoder", temporal, tmp_path / "temporal")


@pytest.mark.parametrize("stage", ["image", "video", "prediction", "interpolation"])
def test_ldm_stages(chain, tmp_path, stage):
    init = {
        "image": None,
        "video": chain["image"],
        "prediction": chain["video"],
        "interpolation": chain["prediction"],
    }[stage]
    cfg = dataclasses.replace(
        chain["base"],
        stage=stage,
        init_from=str(init) if init else None,
        context_channels=8,
        fast_latents=chain["fast"] if stage == "interpolation" else None,
    )
    if stage == "video":  # mixed steps (image batches train the spatial layers) under DDP too
        cfg = dataclasses.replace(cfg, image_batch_every=2, schedule=ScheduleConfig(frame_correlation=0.3))
    two_ranks_match_one(f"{stage}-ldm" if stage in ("image", "video") else stage, cfg, tmp_path)


def test_prediction_with_gradient_accumulation_resumes_from_one_rank_on_two(chain, tmp_path):
    cfg = dataclasses.replace(
        chain["base"], stage="prediction", init_from=str(chain["video"]), context_channels=8, steps=3
    )
    straight = train_ldm(dataclasses.replace(cfg, out_dir=str(tmp_path / "straight")), progress=False).parent
    resumed = dataclasses.replace(cfg, out_dir=str(tmp_path / "resumed"), grad_accum=2)
    train_ldm(dataclasses.replace(resumed, steps=1), progress=False)  # 1 rank, 2 micro-batches of 2
    torchrun("prediction", resumed)  # 2 ranks x 2 micro-batches of 1, from step 1 to 3
    assert losses(resumed.out_dir, "prediction") == pytest.approx(
        losses(straight, "prediction"), rel=1e-3, abs=1e-5
    )


def test_upsampler_image_and_video_stages(tmp_path):
    cache = HighResCacheConfig(dir=str(tmp_path / "cache"), clips=2, num_frames=3, size=(64, 128), scale=2)
    cfg = UpsamplerTrainConfig(
        upsampler=dataclasses.replace(TINY_UPSAMPLER, scale=2),
        cache=cache,
        crop=(32, 64),
        batch_size=4,
        num_frames=3,
        log_every=1,
        save_every=1,
    )
    two_ranks_match_one("upsampler", cfg, tmp_path)
    image = tmp_path / "upsampler-1" / "ema"
    video = dataclasses.replace(cfg, stage="video", init_from=str(image), motion_weight=1.0)
    two_ranks_match_one("upsampler", video, tmp_path / "video")


def test_probes(tmp_path):
    cfg = ProbeTrainConfig(size=(64, 128), num_frames=3, batch_size=4, log_every=1, save_every=1)
    two_ranks_match_one("probes", cfg, tmp_path)


def test_rank_rows_cover_the_global_batch_once():
    for world, accum in ((1, 1), (2, 1), (2, 3), (3, 2)):
        ranks = [Ranks(r, world, r, accum) for r in range(world)]
        n = 12 if world * accum <= 6 else 24
        micro = [list(range(n))[rk.micro_rows(m, n)] for rk in ranks for m in range(accum)]
        assert sorted(i for rows in micro for i in rows) == list(range(n))
        for rk in ranks:  # a rank computes only rows it loaded
            loaded = set(range(n)[rk.load_rows(n)])
            assert all(set(range(n)[rk.micro_rows(m, n)]) <= loaded for m in range(accum))
        loads = [next(iter(RankBatches([list(range(n))], rk))) for rk in ranks]
        assert [i for rows in loads for i in rows] == list(range(n))
    uneven = [Ranks(r, 2, r, 1).micro_rows(0, 5) for r in range(2)]  # box crops: any count
    assert [len(range(5)[s]) for s in uneven] == [2, 3]
    assert next(sequential_batches(5, 3, start=4)) == [4, 0, 1]


def test_batch_must_split_evenly_and_the_error_says_how():
    with pytest.raises(ValueError, match="multiple of 4"):
        Ranks(0, 2, 0, 2).check_batch(6)
