#!/usr/bin/env bash
# Round 8 ("Real look") evaluation: assembles the stages of scripts/retrain_real_look.sh into one
# model folder (fp16, as it would ship) and measures it as MODEL_CARD.md reports.
#   STEP="assemble gen samples report context ae" bash scripts/eval_real_look.sh
# gen: the example scenarios (16 key frames each) under the real-photo detector, against the
# Udacity clip's held-out last 10 s; samples: night/day luma of three day/night pairs; report:
# `eval report` on 32 held-out world clips; context: the rollout seam; ae: the decoders' gate.
set -uo pipefail
cd "$(dirname "$0")/.."
DS=.venv/bin/drivesim
R=runs/r8
M=${M:-$R/full}
E=${E:-$R/eval}
TD=${TD:-$R/td_gan/final}
REF="--reference ../shared/data/udacity_project_video_640x360.mp4 --reference-from-s 40.4"
mkdir -p "$E"
for s in ${STEP:-assemble gen samples}; do
  echo "=== $s $(date +%T)"
  case $s in
    assemble)
      .venv/bin/python scripts/ship_tiny.py --out "$M" --version tiny-20261207-r8 \
        --only autoencoder temporal_decoder unet prediction interpolation upsampler \
        --source autoencoder=$R/ae_final/final --source temporal_decoder="$TD" \
        --source unet=$R/video/ema --source prediction=$R/prediction/ema \
        --source interpolation=$R/interpolation/ema --source upsampler=drivesim/assets/tiny/upsampler ;;
    gen)
      rm -rf "$E/gen" && $DS generate --scenario scenarios --out "$E/gen" --model "$M" --quiet
      $DS eval detector "$E/gen" --every 1 $REF --json "$E/gen.json" --montage "$E/gen.png" --quiet ;;
    samples)
      $DS eval samples --model "$M" --seeds 11 12 13 --frames 4 --steps 12 --montage "$E/samples.png" ;;
    report)
      $DS eval report model="$M" real.clips=32 generated.clips=32 out="$E/report" --quiet ;;
    context)
      $DS eval context --model "$M" --strengths 1 --quiet ;;
    ae)
      $DS eval autoencoder --autoencoder $R/ae_final/final --temporal-decoder "$TD" --detector-clips 8 --quiet ;;
    *) echo "unknown STEP $s: use assemble gen samples report context ae" >&2; exit 2 ;;
  esac
done
