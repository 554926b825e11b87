#!/usr/bin/env bash
# How the shipped tiny checkpoints (drivesim/assets/tiny) were trained on a 2-core CPU.
# Every stage resumes from runs/<stage>/last if interrupted; re-run the script to continue.
# Round 4 (tiny-20261128-r4): zero-terminal-SNR v-prediction schedule, AdaGN resnets, scene
# tokens, rasterised box layout, joint drop-all dropout, mixed-noise prior (0.5) in the video
# stages; every LDM stage retrained from scratch. Round 6 (tiny-20261128-r6): the whole temporal
# decoder fine-tuned after its temporal layers, prediction to 3,000 steps, probes trained with the
# decoder round trip. Round 7 (tiny-20261128-r7): the temporal decoder fine-tuned 400 more steps
# with the warped-motion loss, weights averaged over its last three saves. Earlier rounds: git
# history of this file.
set -euo pipefail
cd "$(dirname "$0")/.."
DS=.venv/bin/drivesim
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# 1. image autoencoder (KL-f8), unchanged since tiny-20261124 and shipped as
#    drivesim/assets/tiny/autoencoder; the LDM latent caches are encoded with that file.
#    To retrain it: L1 + SSIM + KL, 2D patch GAN from step 600 to 1000, then without GAN to 1800.
if [ "${RETRAIN_AE:-0}" = 1 ]; then
  $DS train autoencoder steps=1000 disc_start=600 out_dir=runs/autoencoder/image --quiet
  $DS train autoencoder steps=1800 disc_start=1000000 lr=5e-4 out_dir=runs/autoencoder/image --quiet
fi
AE=${AE:-drivesim/assets/tiny/autoencoder}
# 2. temporal decoder: only temporal layers; no GAN (the 3D discriminator raised flicker in
#    round 3), motion loss (L1 between frame differences of reconstruction and input) weight 5
#    for 300 steps, weight 10 to step 1000, then weight 20 at lr 1e-3 to step 1400 (each
#    resumed with a fresh optimizer)
$DS train autoencoder stage=temporal init_from=$AE steps=300 batch_size=2 disc_start=1000000 \
    motion_weight=5 out_dir=runs/autoencoder/temporal3 --quiet
$DS train autoencoder stage=temporal init_from=$AE steps=1000 batch_size=2 disc_start=1000000 \
    motion_weight=10 out_dir=runs/autoencoder/temporal3 --quiet
$DS train autoencoder stage=temporal init_from=$AE steps=1400 batch_size=2 disc_start=1000000 \
    motion_weight=20 lr=1e-3 out_dir=runs/autoencoder/temporal3 --quiet
#    round 6: then the whole decoder (its own weights too, encoder frozen) at motion weight 20,
#    lr 2e-4, to step TD_STEPS (resumed once at 2000 with a fresh optimizer)
$DS train autoencoder stage=temporal init_from=$AE steps=2000 batch_size=2 disc_start=1000000 \
    motion_weight=20 lr=2e-4 train_spatial=true out_dir=runs/autoencoder/temporal3 --quiet
$DS train autoencoder stage=temporal init_from=$AE steps=2300 batch_size=2 disc_start=1000000 \
    motion_weight=20 lr=2e-4 train_spatial=true out_dir=runs/autoencoder/temporal3 --quiet
#    round 7: 400 more steps with the warped-motion loss (weight 8: the residual's change along the
#    input's optical flow, what `eval autoencoder` reports as warped flicker); the final weights are
#    the mean of the saves at steps 2500, 2600 and 2700 (shipped r7 resumed from r6's fp16 file)
$DS train autoencoder stage=temporal init_from=$AE steps=2700 batch_size=2 disc_start=1000000 \
    motion_weight=20 warped_motion_weight=8 lr=2e-4 train_spatial=true save_every=100 average_last=3 \
    out_dir=runs/autoencoder/temporal3 --quiet
# 3. image LDM on single latent frames (builds the latent cache of 500 procedural clips first)
$DS train image-ldm steps=2500 batch_size=12 lr=4e-4 ema_decay=0.995 latents.autoencoder=$AE \
    out_dir=runs/ldm/image --quiet
# 4. video LDM: temporal layers only, spatial weights frozen
$DS train video-ldm steps=1000 lr=5e-4 ema_decay=0.99 init_from=runs/ldm/image/ema \
    latents.autoencoder=$AE out_dir=runs/ldm/video --quiet
# 5. prediction model (0/1/2 context frames), then the interpolation model (stage 1 + 2)
$DS train prediction steps=3000 lr=5e-4 ema_decay=0.99 init_from=runs/ldm/video/ema \
    latents.autoencoder=$AE out_dir=runs/ldm/prediction --quiet
$DS train interpolation steps=600 lr=5e-4 ema_decay=0.99 init_from=runs/ldm/prediction/ema \
    latents.autoencoder=$AE fast_latents.autoencoder=$AE out_dir=runs/ldm/interpolation --quiet
# 6. the 4x upsampler (128x256 -> 512x1024): renders 96 procedural clips at 512x1024 once into
#    runs/upsampler/cache (with a copy through the shipped autoencoder + temporal decoder), then
#    an image stage on single-frame 128x256 crops and a video stage that trains only the temporal
#    layers (spatial weights frozen) on 8-frame crops
$DS train upsampler steps=3000 out_dir=runs/upsampler/image --quiet
$DS train upsampler stage=video init_from=runs/upsampler/image/ema steps=600 batch_size=2 lr=5e-4 \
    motion_weight=5 out_dir=runs/upsampler/video --quiet
# 7. evaluation probes (round 6): half of the batches are procedural clips after the shipped
#    autoencoder + temporal decoder (round 4's) round trip, so they judge content, not blur;
#    800 steps, then resumed to 2000
$DS train probes out_dir=runs/probes reconstruct_with=drivesim/assets/tiny steps=800 --quiet
$DS train probes out_dir=runs/probes reconstruct_with=drivesim/assets/tiny steps=2000 --quiet
echo "all stages done; ship with: .venv/bin/python scripts/ship_tiny.py --version tiny-YYYYMMDD"
