#!/usr/bin/env bash
# pretrained/row_lstm_binarized_mnist: the paper's binarized-MNIST Row LSTM (7 layers,
# h=16), float32, in two runs: (1) the Diagonal BiLSTM's recipe (Adam 3e-3, 100 warmup
# steps, cosine to 0 at step 6,000); (2) from its weights with a fresh optimizer, a
# second cosine (Adam 2e-3, 100 warmup steps, to 0 at step 10,000). Each run ends with
# the whole-split validation NLL (--mode=eval); the second is shipped. Run from the
# repository root with the data in TFDS_DATA_DIR.
set -euo pipefail
first_dir=${1:-runs/row_lstm_cos6000}
model_dir=${2:-runs/row_lstm_tuned}
loops="--steps_per_loop=250 --eval_every_loops=2 --eval_examples=2000"
python train.py --preset=row_lstm_mnist_7x16 --learning_rate=3e-3 --lr_schedule=cosine \
  --warmup_steps=100 --train_steps=6000 $loops --model_dir="$first_dir"
python train.py --mode=eval --model_dir="$first_dir"
python train.py --init_from="$first_dir" --learning_rate=2e-3 --lr_schedule=cosine \
  --warmup_steps=100 --train_steps=10000 $loops --model_dir="$model_dir"
python train.py --mode=eval --model_dir="$model_dir"
python -m tools.pretrained.ship --model_dir="$model_dir" \
  --name=row_lstm_binarized_mnist --recipe=tools/pretrained/row_lstm_binarized_mnist.sh
