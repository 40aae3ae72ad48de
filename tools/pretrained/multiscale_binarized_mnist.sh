#!/usr/bin/env bash
# pretrained/multiscale_binarized_mnist: the multi-scale PixelRNN on binarized MNIST
# (a 14x14 Row LSTM and the full-size conditional Row LSTM, 7 layers x h=16 each),
# float32, Adam 3e-3 with 100 warmup steps and a cosine to 0 at step 10,500; then the
# whole-split validation NLL (--mode=eval) and shipping. Run from the repository root
# with the data in TFDS_DATA_DIR (or pass --data_dir).
set -euo pipefail
model_dir=${1:-runs/multiscale_bmnist}
python train.py --model=multiscale --num_layers=7 --hidden_dims=16 \
  --learning_rate=3e-3 --lr_schedule=cosine --warmup_steps=100 --train_steps=10500 \
  --steps_per_loop=250 --eval_every_loops=2 --eval_examples=2000 \
  --model_dir="$model_dir"
python train.py --mode=eval --model_dir="$model_dir"
python -m tools.pretrained.ship --model_dir="$model_dir" \
  --name=multiscale_binarized_mnist \
  --recipe=tools/pretrained/multiscale_binarized_mnist.sh
