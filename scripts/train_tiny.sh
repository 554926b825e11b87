#!/usr/bin/env bash
# How the shipped tiny checkpoints (drivesim/assets/tiny) were trained on a 2-core CPU.
# Every stage resumes from runs/<stage>/last if interrupted; re-run the script to continue.
set -euo pipefail
cd "$(dirname "$0")/.."
DS=.venv/bin/drivesim
TD_STEPS=${TD_STEPS:-400}
IMG_STEPS=${IMG_STEPS:-4000}
VID_STEPS=${VID_STEPS:-1400}

# 1. image autoencoder (KL-f8): L1 + SSIM + KL with a 2D patch GAN from step 600 to 1000,
#    then (resumed, fresh optimizer) L1 + SSIM + KL only to step 1800: the GAN phase had
#    raised the reconstruction loss, and CPU time was short.
$DS train autoencoder steps=1000 disc_start=600 out_dir=runs/autoencoder/image --quiet
$DS train autoencoder steps=1800 disc_start=1000000 lr=5e-4 out_dir=runs/autoencoder/image --quiet
# 2. temporal decoder: only temporal layers, 3D video discriminator + motion (flicker) loss,
#    procedural clips mixed with the real clip in ../shared/data
$DS train autoencoder stage=temporal init_from=runs/autoencoder/image/final steps=$TD_STEPS \
    batch_size=2 disc_start=100 real_video_root=../shared/data out_dir=runs/autoencoder/temporal2 --quiet
# 3. image LDM on single latent frames (builds the latent cache of 500 procedural clips first);
#    the shipped run used ema_decay 0.999 to step 1800, then resumed with ema_decay=0.995
$DS train image-ldm steps=1800 out_dir=runs/ldm/image --quiet
$DS train image-ldm steps=$IMG_STEPS ema_decay=0.995 out_dir=runs/ldm/image --quiet
# 4. video LDM: temporal layers only, spatial weights frozen
$DS train video-ldm steps=$VID_STEPS init_from=runs/ldm/image/ema out_dir=runs/ldm/video2 save_every=200 --quiet
# 5. prediction model (0/1/2 context frames), then the interpolation model (stage 1 + 2).
#    Rounds 1-2 scored known frames too (known_frames_in_loss=true, the behaviour then);
#    round 2 continued each with lr 1e-3 and ema_decay 0.99.
$DS train prediction steps=800 init_from=runs/ldm/video2/ema out_dir=runs/ldm/prediction save_every=200 \
    known_frames_in_loss=true --quiet
$DS train interpolation steps=${INTERP_STEPS:-800} init_from=runs/ldm/prediction/ema \
    out_dir=runs/ldm/interpolation save_every=200 known_frames_in_loss=true --quiet
$DS train prediction steps=500 init_from=runs/ldm/prediction/last lr=1e-3 ema_decay=0.99 \
    out_dir=runs/ldm/prediction2 known_frames_in_loss=true --quiet
$DS train interpolation steps=600 init_from=runs/ldm/interpolation/last lr=1e-3 ema_decay=0.99 \
    out_dir=runs/ldm/interpolation2 known_frames_in_loss=true --quiet
#    round 3: only the generated frames are scored
$DS train prediction steps=3000 init_from=runs/ldm/prediction2/last lr=1e-3 ema_decay=0.99 \
    out_dir=runs/ldm/prediction3 save_every=250 --quiet
$DS train interpolation steps=1000 init_from=runs/ldm/interpolation2/last lr=1e-3 ema_decay=0.99 \
    out_dir=runs/ldm/interpolation3 save_every=250 --quiet
# 6. evaluation probes
$DS train probes steps=700 out_dir=runs/probes --quiet
echo "all stages done; ship with: .venv/bin/python scripts/ship_tiny.py --version tiny-YYYYMMDD"
