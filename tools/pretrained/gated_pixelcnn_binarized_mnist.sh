#!/usr/bin/env bash
# pretrained/gated_pixelcnn_binarized_mnist: the Gated PixelCNN (12 layers, h=24) on
# binarized MNIST, bfloat16 on a CPU with AMX, dropout 0.1, Adam 3e-3 with 100 warmup
# steps and a cosine to 0 at step 8,000; then the whole-split validation NLL
# (--mode=eval) and shipping. Run from the repository root with the data in
# TFDS_DATA_DIR (or pass --data_dir).
set -euo pipefail
model_dir=${1:-runs/gated_pixelcnn_bmnist}
python train.py --model=gated_pixelcnn --num_layers=12 --hidden_dims=24 \
  --mixed_precision --dropout=0.1 --learning_rate=3e-3 --lr_schedule=cosine \
  --warmup_steps=100 --train_steps=8000 --eval_every_loops=2 --eval_examples=2000 \
  --model_dir="$model_dir"
python train.py --mode=eval --model_dir="$model_dir"
python -m tools.pretrained.ship --model_dir="$model_dir" \
  --name=gated_pixelcnn_binarized_mnist \
  --recipe=tools/pretrained/gated_pixelcnn_binarized_mnist.sh
