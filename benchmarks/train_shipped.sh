#!/usr/bin/env bash
# The shipped models (models/*.ccam), as they were made: configs/shipped.py's base
# model at lambda 1.8, then the rate points 0.3, 7 and 15 fine-tuned from it, the low
# rates 40 (from 15) and 150 (from 40) in turn, then export (float16 weights: each
# bundle under 10 MB; benchmarks/float16_cost.py measures it); the top rate from the
# lambda-0.3 bundle; round 2: the base trained on, lambda 7 and 0.3 fine-tuned again;
# round 3: qualities 5-7 trained on from their own bundles; round 4: quality 4 trained
# on, qualities 1-3 chained anew from it; round 5: qualities 6 and 7 trained on;
# round 6: quality 5; rounds 7-12: qualities 3-6; rounds 13-15: qualities 1-4.
# On this 2-core CPU: about 60 min for the base, about 15 min per fine-tune. Re-running
# resumes (each workdir continues from its last checkpoint).
#   bash benchmarks/train_shipped.sh [FINE_TUNE_STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
export JAX_PLATFORMS=cpu
ft_steps=${1:-1000}
train() { nice -n 10 .venv/bin/python -m cca_jax.train --config "configs/shipped.py:$1" \
  --workdir "workdirs/ship_$1" "${@:2}"; }
echo "== base, lambda 1.8 $(date)"
train 1.8
fine_tune() {
  echo "== fine-tune lambda $1 from workdirs/ship_$2 $(date)"
  train "$1" --config.init_from="workdirs/ship_$2" --config.num_steps="$ft_steps" \
    --config.learning_rate=5e-4 --config.warmup_steps=0 --config.eval_every="$ft_steps" \
    --config.checkpoint_every=250
}
for l in 0.3 7 15; do
  fine_tune "$l" 1.8
done
fine_tune 40 15
fine_tune 150 40
echo "== export $(date)"
for l in 150 40 15 7 1.8 0.3; do
  .venv/bin/python -m cca_jax.export --workdir "workdirs/ship_$l" \
    --out "models/cca-m96-l$l.ccam" --weights float16 --no-register
done
# The top rate point, fine-tuned from the exported lambda-0.3 bundle (alpha 0.2 keeps
# the z rate from becoming free; configs/shipped.py, models/README.md).
train 0.05 --config.init_from=models/cca-m96-l0.3.ccam --config.alpha=0.2 \
  --config.num_steps=2000 --config.learning_rate=5e-4 --config.warmup_steps=0 \
  --config.eval_every=500 --config.checkpoint_every=250
.venv/bin/python -m cca_jax.export --workdir workdirs/ship_0.05 \
  --out models/cca-m96-l0.05.ccam --weights float16 --no-register
# Round 2 (2026-12-06/07): the base model trained on from its bundle for 6000 more
# steps (peak lr 5e-4, 100 warm-up steps, cosine to 2e-5; a fresh auxiliary model),
# then lambda 7 and 0.3 fine-tuned from it as above, and lambda 0.05 from the new
# lambda-0.3 bundle; they replaced qualities 4-7 (models/README.md; the round-1
# bundles moved to models/retired/). Qualities 1-3 are still those of round 1.
mkdir -p models/retired
for l in 7 1.8 0.3 0.05; do
  [ -e "models/retired/cca-m96-l$l-r1.ccam" ] ||
    mv "models/cca-m96-l$l.ccam" "models/retired/cca-m96-l$l-r1.ccam"
done
round2() { nice -n 10 .venv/bin/python -m cca_jax.train --config "configs/shipped.py:$1" \
  --workdir "workdirs/round2_$1" "${@:2}"; }
round2 1.8 --config.init_from=models/retired/cca-m96-l1.8-r1.ccam \
  --config.num_steps=6000 --config.learning_rate=5e-4 --config.warmup_steps=100 \
  --config.lr_end_factor=0.04
for l in 7 0.3; do
  round2 "$l" --config.init_from=workdirs/round2_1.8 \
    --config.num_steps="$ft_steps" --config.learning_rate=5e-4 --config.warmup_steps=0 \
    --config.eval_every="$ft_steps" --config.checkpoint_every=250
done
for l in 1.8 7 0.3; do
  .venv/bin/python -m cca_jax.export --workdir "workdirs/round2_$l" \
    --out "models/cca-m96-l$l.ccam" --weights float16 --no-register
done
round2 0.05 --config.init_from=models/cca-m96-l0.3.ccam --config.alpha=0.2 \
  --config.num_steps="$ft_steps" --config.learning_rate=5e-4 --config.warmup_steps=0 \
  --config.eval_every="$ft_steps" --config.checkpoint_every=250
.venv/bin/python -m cca_jax.export --workdir workdirs/round2_0.05 \
  --out models/cca-m96-l0.05.ccam --weights float16 --no-register
# Round 3 (2026-12-07): qualities 7, 6 and 5 trained on from their own round-2
# bundles (lambda 0.05 and 0.3: 2500 steps, peak lr 5e-4; lambda 1.8: 1500 steps,
# peak lr 3e-4; 50 warm-up steps, cosine; a fresh auxiliary model); each replaced its
# round-2 model (kept as models/retired/*-r2.ccam). Qualities 1-4 are unchanged.
for l in 0.05 0.3 1.8; do
  [ -e "models/retired/cca-m96-l$l-r2.ccam" ] ||
    cp "models/cca-m96-l$l.ccam" "models/retired/cca-m96-l$l-r2.ccam"
done
round3() { nice -n 10 .venv/bin/python -m cca_jax.train --config "configs/shipped.py:$1" \
  --workdir "workdirs/round3_$1" --config.init_from="models/retired/cca-m96-l$1-r2.ccam" \
  --config.warmup_steps=50 --config.eval_every=500 --config.checkpoint_every=250 "${@:2}"; }
round3 0.05 --config.alpha=0.2 --config.num_steps=2500 --config.learning_rate=5e-4
round3 0.3 --config.num_steps=2500 --config.learning_rate=5e-4
round3 1.8 --config.num_steps=1500 --config.learning_rate=3e-4
for l in 0.05 0.3 1.8; do
  .venv/bin/python -m cca_jax.export --workdir "workdirs/round3_$l" \
    --out "models/cca-m96-l$l.ccam" --weights float16 --no-register
done
# Round 4 (2026-12-07): quality 4 (lambda 7) trained on from its round-2 bundle for
# 1000 steps (peak lr 3e-4, 50 warm-up steps), then the low rates chained anew from
# it, as round 1 chained them from its base: lambda 15 (1500 steps), 40 from 15 and
# 150 from 40 (1200 steps each; peak lr 5e-4, no warm-up, cosine); they replaced
# qualities 1-4 (kept as models/retired/*-r1.ccam, and cca-m96-l7-r2.ccam).
for l in 150 40 15; do
  [ -e "models/retired/cca-m96-l$l-r1.ccam" ] ||
    cp "models/cca-m96-l$l.ccam" "models/retired/cca-m96-l$l-r1.ccam"
done
[ -e models/retired/cca-m96-l7-r2.ccam ] || cp models/cca-m96-l7.ccam models/retired/cca-m96-l7-r2.ccam
round3 7 --config.num_steps=1000 --config.learning_rate=3e-4
round4() { nice -n 10 .venv/bin/python -m cca_jax.train --config "configs/shipped.py:$1" \
  --workdir "workdirs/round4_$1" --config.init_from="workdirs/round$3_$2" \
  --config.num_steps="$4" --config.learning_rate=5e-4 --config.warmup_steps=0 \
  --config.eval_every=500 --config.checkpoint_every=250; }
round4 15 7 3 1500
round4 40 15 4 1200
round4 150 40 4 1200
.venv/bin/python -m cca_jax.export --workdir workdirs/round3_7 --out models/cca-m96-l7.ccam \
  --weights float16 --no-register
for l in 15 40 150; do
  .venv/bin/python -m cca_jax.export --workdir "workdirs/round4_$l" \
    --out "models/cca-m96-l$l.ccam" --weights float16 --no-register
done
# Round 5 (2026-12-07): qualities 7 and 6 trained on from their round-3 bundles, 3000
# steps each (peak lr 3e-4, 50 warm-up steps, cosine); they replaced qualities 6 and 7
# (kept as models/retired/cca-m96-l{0.05,0.3}-r3.ccam).
for l in 0.05 0.3; do
  [ -e "models/retired/cca-m96-l$l-r3.ccam" ] ||
    cp "models/cca-m96-l$l.ccam" "models/retired/cca-m96-l$l-r3.ccam"
done
round5() { nice -n 10 .venv/bin/python -m cca_jax.train --config "configs/shipped.py:$1" \
  --workdir "workdirs/round5_$1" --config.init_from="models/retired/cca-m96-l$1-r3.ccam" \
  --config.warmup_steps=50 --config.eval_every=500 --config.checkpoint_every=250 \
  --config.num_steps=3000 --config.learning_rate=3e-4 "${@:2}"; }
round5 0.05 --config.alpha=0.2
round5 0.3
for l in 0.05 0.3; do
  .venv/bin/python -m cca_jax.export --workdir "workdirs/round5_$l" \
    --out "models/cca-m96-l$l.ccam" --weights float16 --no-register
done
# Rounds 6-15 train a quality on from its own bundle for 3000 steps (peak lr 3e-4
# unless overridden, 50 warm-up steps, cosine, fresh optimizers and auxiliary model)
# and keep the bundle it replaces as models/retired/cca-m96-l<lambda>-r<the round that
# made it>.ccam (the repository keeps those that shipped: not the round-9 bundles of
# qualities 3 and 4, the round-11 bundles of qualities 5 and 6 nor the round-13 bundle
# of quality 2, which the next round replaced in the same session).
train_on() {  # ROUND LAMBDA ROUND-OF-THE-BUNDLE-IT-REPLACES [CONFIG OVERRIDES]
  local round=$1 l=$2 old="models/retired/cca-m96-l$2-r$3.ccam"
  [ -e "$old" ] || cp "models/cca-m96-l$l.ccam" "$old"
  nice -n 10 .venv/bin/python -m cca_jax.train --config "configs/shipped.py:$l" \
    --workdir "workdirs/round${round}_$l" --config.init_from="$old" \
    --config.warmup_steps=50 --config.eval_every=500 --config.checkpoint_every=250 \
    --config.learning_rate=3e-4 --config.num_steps=3000 "${@:4}"
  .venv/bin/python -m cca_jax.export --workdir "workdirs/round${round}_$l" \
    --out "models/cca-m96-l$l.ccam" --weights float16 --no-register
}
# Round 6 (2026-12-07): quality 5 (lambda 1.8, last trained in round 3).
train_on 6 1.8 3
# Round 7 (2026-12-07): qualities 4 and 3 (lambda 7 and 15, last trained in round 4).
train_on 7 7 4
train_on 7 15 4
# Round 8 (2026-12-07): quality 6 (lambda 0.3, last trained in round 5). Quality 5 was
# left as it is: 1000 more steps of the same recipe from its round-6 bundle moved it
# by 0.01 dB on Kodak, with batch 8 of 128x128 crops and with batch 2 of 256x256 alike
# (docs/benchmarks.md, "Shipped models, rounds 7 and 8").
train_on 8 0.3 5
# Round 9 (2026-12-07): qualities 4, 3 and 6 once more from their round-7/8 bundles.
train_on 9 7 7
train_on 9 15 7
train_on 9 0.3 8
# Quality 5 (lambda 1.8, round 6) at a third of the peak lr.
train_on 9 1.8 6 --config.learning_rate=1e-4
# Round 10 (2026-12-07): qualities 4 and 3 once more from their round-9 bundles.
train_on 10 7 9
train_on 10 15 9
# Round 11 (2026-12-07/08): qualities 6, 5, 4 and 3 once more, all at peak lr 1e-4.
train_on 11 0.3 9 --config.learning_rate=1e-4
train_on 11 1.8 9 --config.learning_rate=1e-4
train_on 11 7 10 --config.learning_rate=1e-4
train_on 11 15 10 --config.learning_rate=1e-4
# Round 12 (2026-12-08): qualities 6 and 5 once more from their round-11 bundles.
train_on 12 0.3 11 --config.learning_rate=1e-4
train_on 12 1.8 11 --config.learning_rate=1e-4
# Round 13 (2026-12-08): qualities 2 and 1 (lambda 40 and 150, last trained in round 4).
train_on 13 40 4
train_on 13 150 4
# Round 14 (2026-12-08): quality 2 once more, then qualities 3 and 4 at peak lr 3e-4.
train_on 14 40 13
train_on 14 15 11
train_on 14 7 11
# Round 15 (2026-12-08): quality 2 a third time.
train_on 15 40 14
echo "== done $(date)"
