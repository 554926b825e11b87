#!/usr/bin/env bash
# Round 8 ("Real look", not shipped yet): the cascade retrained so that a real-photo detector can
# find the cars it draws. Every stage resumes from its out_dir/last when re-run, so this script
# can be run a piece at a time across sessions (RUN=ae|image|prediction|video|td|interpolation|all).
#
# Why: the shipped tiny autoencoder (4 latent channels, one of them unused) decodes no car the
# detector finds (`drivesim eval autoencoder --detector-clips 8`: 0/107 boxes; 72/107 at 128x256
# without it), so no key-frame model on its latents can. Growing it to 8 latent channels
# (widen_latent, function-preserving) and training on the new world + pseudo-labelled real
# footage is the first step; the LDM stages are grown onto the new latents (widen_init) with
# 6 box classes (class-aware layout and tokens), so they keep what they learnt.
#
# Real footage: the Udacity clip in ../shared/data (MIT), its first 40 s only (the last 10 s are
# held out for evaluation), cut to runs/real_train/udacity_first40s.mp4 and pseudo-labelled:
#   drivesim label runs/real_labelled/udacity_first40s.mp4 --out runs/real_labelled --every 1
set -euo pipefail
cd "$(dirname "$0")/.."
DS=.venv/bin/drivesim
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
RUN=${RUN:-all}
R=runs/r8
REAL="real_video_root=runs/real_train real_fraction=0.25"
# the image decoder the cascade ships: the decoder-only run frozen at AE_FINAL_STEP (3600)
AE=$R/ae_final/final
LAT="latents.path=$R/latents.safetensors latents.clips=600 latents.autoencoder=$R/encoder \
latents.real_root=runs/real_labelled latents.real_stride_s=0.125"
UNET="unet.in_channels=8 unet.out_channels=8 unet.box_classes=6 widen_init=true"

if [[ $RUN == ae || $RUN == all ]]; then
  # 1. the image autoencoder, widened 4 -> 8 latent channels, with the 2D patch GAN from step 300
  #    (without it, 700 steps reached the same PSNR but 0 detector hits; with it 9/107 at 1100),
  #    the whole model to step 1200 (runs/r8/encoder: the LDMs' latent space), then the decoder
  #    alone, resumed from that checkpoint, to AE_STEPS
  if [[ ! -f $R/encoder.json ]]; then
    $DS train autoencoder init_from=drivesim/assets/tiny widen_latent=8 steps=1200 disc_start=300 \
        lr=2e-4 $REAL save_every=100 out_dir=$R/ae_full --quiet
    mkdir -p $R/ae
    for f in last last_disc; do cp $R/ae_full/$f.json $R/ae_full/$f.safetensors $R/ae/; done
    cp $R/ae_full/last.json $R/encoder.json && cp $R/ae_full/last.safetensors $R/encoder.safetensors
  fi
  $DS train autoencoder init_from=drivesim/assets/tiny widen_latent=8 train_encoder=false \
      steps=${AE_STEPS:-3600} disc_start=300 lr=2e-4 $REAL save_every=100 out_dir=$R/ae --quiet
  mkdir -p $R/ae_final && cp $R/ae/last.json $AE.json && cp $R/ae/last.safetensors $AE.safetensors
fi
if [[ $RUN == image || $RUN == all ]]; then
  # 2. the key-frame backbone: the shipped video LDM's spatial layers grown to 8 channels and
  #    6 box classes, tuned on the new latents (its temporal layers kept)
  $DS train image-ldm init_from=drivesim/assets/tiny $UNET $LAT steps=${IMG_STEPS:-2500} batch_size=12 \
      lr=3e-4 ema_decay=0.995 save_every=250 out_dir=$R/image --quiet
fi
if [[ $RUN == prediction || $RUN == all ]]; then
  # 3. the prediction model: the shipped one grown the same way, its spatial layers from step 2
  $DS train prediction init_from=drivesim/assets/tiny/prediction spatial_from=$R/image/ema $UNET $LAT \
      steps=${PRED_STEPS:-2000} lr=3e-4 ema_decay=0.99 save_every=250 out_dir=$R/prediction --quiet
fi
if [[ $RUN == video || $RUN == all ]]; then
  # 4. the folder-mode key-frame model: step 2's backbone under its (kept) temporal layers, tuned
  $DS train video-ldm init_from=$R/image/ema $UNET $LAT steps=${VIDEO_STEPS:-800} lr=3e-4 \
      ema_decay=0.99 save_every=200 out_dir=$R/video --quiet
fi
if [[ $RUN == td || $RUN == all ]]; then
  # 5. the temporal decoder: the shipped one's temporal layers on the new image decoder, only they
  #    train (train_spatial would fine-tune the GAN-trained decoder without its GAN and blur it):
  #    first on L1 + motion alone, then with the 3D video discriminator at a lower motion weight.
  #    L1 alone smooths the GAN's detail away (detector gate: image decoder 34/107 boxes, this
  #    decoder 7/107 at 800 steps); the GAN stage brings it to 15/107 at 600 more.
  $DS train autoencoder stage=temporal init_from=$AE temporal_from=drivesim/assets/tiny \
      steps=${TD_STEPS:-800} batch_size=2 disc_start=1000000 motion_weight=20 lr=5e-4 $REAL \
      save_every=100 out_dir=$R/td --quiet
  $DS train autoencoder stage=temporal init_from=$AE temporal_from=$R/td/final \
      steps=${TD_GAN_STEPS:-1200} batch_size=2 disc_start=0 disc_weight=0.5 motion_weight=5 lr=2e-4 \
      $REAL save_every=100 out_dir=$R/td_gan --quiet
fi
if [[ $RUN == interpolation || $RUN == all ]]; then
  # 6. the interpolation model: the shipped one grown the same way, its spatial layers from step 2
  $DS train interpolation init_from=drivesim/assets/tiny/interpolation spatial_from=$R/image/ema $UNET $LAT \
      fast_latents.path=$R/latents_30fps.safetensors fast_latents.autoencoder=$R/encoder \
      steps=${INTERP_STEPS:-600} lr=3e-4 ema_decay=0.99 save_every=200 out_dir=$R/interpolation --quiet
fi
echo "round 8 stages done ($RUN); check with drivesim eval autoencoder / eval detector before shipping"
