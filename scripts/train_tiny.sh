#!/usr/bin/env bash
# How the shipped tiny checkpoints (drivesim/assets/tiny) were trained on a 2-core CPU.
# Every stage resumes from runs/<stage>/last if interrupted; re-run the script to continue.
set -euo pipefail
cd "$(dirname "$0")/.."
DS=.venv/bin/drivesim
AE_STEPS=${AE_STEPS:-1000}
TD_STEPS=${TD_STEPS:-300}
IMG_STEPS=${IMG_STEPS:-1800}
VID_STEPS=${VID_STEPS:-800}

# 1. image autoencoder (KL-f8): L1 + SSIM + KL, 2D patch GAN from step 600
$DS train autoencoder steps=$AE_STEPS disc_start=600 out_dir=runs/autoencoder/image --quiet
# 2. temporal decoder: only temporal layers, 3D video discriminator
$DS train autoencoder stage=temporal init_from=runs/autoencoder/image/final steps=$TD_STEPS \
    batch_size=2 disc_start=50 real_video_root=../shared/data out_dir=runs/autoencoder/temporal --quiet
# 3. image LDM on single latent frames (builds the latent cache of 500 procedural clips first)
$DS train image-ldm steps=$IMG_STEPS out_dir=runs/ldm/image --quiet
# 4. video LDM: temporal layers only, spatial weights frozen
$DS train video-ldm steps=$VID_STEPS init_from=runs/ldm/image/ema out_dir=runs/ldm/video --quiet
echo "all stages done"
