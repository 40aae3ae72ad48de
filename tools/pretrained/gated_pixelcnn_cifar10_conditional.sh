#!/usr/bin/env bash
# pretrained/gated_pixelcnn_cifar10_conditional: the class-conditional Gated PixelCNN
# (12 layers, h=32, 64 output maps, 256 levels per channel) on CIFAR-10 (JPEG copy),
# bfloat16 on a CPU with AMX, Adam 2e-3 with 200 warmup steps and a cosine to 0 at
# step 3,000 (about 4 epochs of the 47,610 training images); then the whole-split
# validation bits/dim (--mode=eval; the folder loader holds out 5% of the images) and
# shipping with a 10-class sample grid. Run from the repository root:
#
#   d=$(mktemp -d); tar xzf ../shared/data/cifar10_jpeg/train.tar.gz -C "$d"
#   tools/pretrained/gated_pixelcnn_cifar10_conditional.sh "$d/train"
set -euo pipefail
images=${1:?usage: $0 CIFAR10_JPEG_TRAIN_DIR [MODEL_DIR]}
model_dir=${2:-runs/gated_pixelcnn_cifar10}
python train.py --model=gated_pixelcnn --dataset="folder:$images" --image_size=32 \
  --conditional --num_layers=12 --hidden_dims=32 --output_dims=64 \
  --mixed_precision --learning_rate=2e-3 --lr_schedule=cosine --warmup_steps=200 \
  --train_steps=3000 --steps_per_loop=250 --model_dir="$model_dir"
python train.py --mode=eval --model_dir="$model_dir"
python -m tools.pretrained.ship --model_dir="$model_dir" \
  --name=gated_pixelcnn_cifar10_conditional \
  --recipe=tools/pretrained/gated_pixelcnn_cifar10_conditional.sh --samples=30 \
  --dataset_note="CIFAR-10 (JPEG copy): JPEG re-encodings of the CIFAR-10 train split; 5% held out as validation. Bits/dim not comparable with published CIFAR-10 figures."
