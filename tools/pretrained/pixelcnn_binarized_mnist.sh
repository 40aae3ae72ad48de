#!/usr/bin/env bash
# pretrained/pixelcnn_binarized_mnist: the default PixelCNN (16 blocks, h=32, 3x11
# masked convs) on binarized MNIST, bfloat16 on a CPU with AMX, dropout 0.1, Adam 6e-3
# with 250 warmup steps and a cosine to 0 at step 15,000; then the whole-split
# validation NLL (--mode=eval) and shipping. Run from the repository root with the
# data in TFDS_DATA_DIR (or pass --data_dir).
set -euo pipefail
model_dir=${1:-runs/pixelcnn_bmnist_d01}
python train.py --model=pixelcnn --mixed_precision --dropout=0.1 \
  --learning_rate=6e-3 --lr_schedule=cosine --warmup_steps=250 --train_steps=15000 \
  --eval_every_loops=4 --model_dir="$model_dir"
python train.py --mode=eval --model_dir="$model_dir"
python -m tools.pretrained.ship --model_dir="$model_dir" \
  --name=pixelcnn_binarized_mnist --recipe=tools/pretrained/pixelcnn_binarized_mnist.sh
