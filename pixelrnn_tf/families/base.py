"""What every model family provides, and the generic network builder around it.

A family (one module of `pixelrnn_tf.families`) is a `Family` record: its network
(scaled images -> logits, and the `parts` its cached sampler reads), its default
sizes, config checks, generation order, whether it takes class labels, and its
cached one-pixel network (`CachedNetwork`), made of its layers' own steps.
`keras_model` builds any family's `keras.Model` and attaches a `Network` record
(family, config, parts) as `model.pixelrnn`, through which generic code (samplers,
export) reaches the family: never by the model's name or its layers' names.
"""

import dataclasses
import typing
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf


def raster_order(image_shape):
  """Flat raster/RGB indices `(i * W + j) * C + c` in raster/RGB order."""
  return np.arange(int(np.prod(image_shape)))


@dataclasses.dataclass(frozen=True)
class Family:
  """A model family.

  Attributes:
    name: the `ModelConfig.model` value that selects it.
    network: `fn(x, config, images, labels) -> (logits, parts)`: scaled images
      `x` (float, `(B, H, W, C)` in [-1, 1]) to logits `(B, H, W, C, K)`, and the
      `parts` (layers and symbolic maps) that `cached_network` reads. `images` are
      the uint8 images, `labels` int32 `(B,)` or None.
    default_sizes: `ModelConfig` size fields the family takes when left at None
      (`num_layers`, `hidden_dims`, `output_dims`, `kernel_width`).
    cached_network: `fn(model, parts, inputs, start_row) -> CachedNetwork` over
      the caches of `inputs` (what the model takes) for drawing from row
      `start_row` (an int tensor) on, or None: the family samples naively.
    complete_cached: None, or `fn(model, images, start, num_levels, seed, labels,
      run)` for a family that draws in stages (`run` is the generic cached loop,
      `sampling.run_cached`).
    takes_labels: whether the network can be class-conditional.
    generation_order: `fn(image_shape) -> flat indices` in drawing order.
    check_config: `fn(config)` raising ValueError for a config the family cannot
      build (sizes and options beyond `ModelConfig`'s own checks), or None.
  """
  name: str
  network: Callable
  default_sizes: dict
  cached_network: Callable | None = None
  complete_cached: Callable | None = None
  takes_labels: bool = False
  generation_order: Callable = raster_order
  check_config: Callable | None = None


@dataclasses.dataclass(frozen=True)
class Network:
  """What a model built by `keras_model` carries as `model.pixelrnn`: its family,
  config, the parts its family's cached network reads, and its `scale` layer (uint8
  levels -> [-1, 1]), which a sampler applies to each drawn pixel."""
  family: Family
  config: Any
  parts: Any
  scale: keras.layers.Layer


class CachedNetwork(typing.NamedTuple):
  """A family's network one pixel at a time, over float32 caches (a sampler's state).

  Attributes:
    pixel_step: `(i, j, caches) -> (x, caches)`: pixel (i, j) through the network
      to the output layers' input `x` `(B, maps)`, writing what it computes.
    caches: the caches (any nest of tensors), filled by a forward pass.
    write_pixel: `(caches, i, j, pixel) -> caches`: a drawn pixel's scaled values
      `(B, C)` written where layers read the image.
    output: `x -> logits (B, C*K)`: the output layers at one pixel.
    row_end: `(i, caches) -> caches`, run once row `i` is drawn.
  """
  pixel_step: Callable
  caches: Any
  write_pixel: Callable
  output: Callable
  row_end: Callable


def scale_layer(num_levels):
  """The layer mapping integer levels `0..num_levels-1` to floats in [-1, 1]."""
  return keras.layers.Rescaling(2.0 / (num_levels - 1), offset=-1.0, name="scale")


def keras_model(family, config, name=None):
  """Returns the `keras.Model` of `family` for `config`: uint8 `(B,H,W,C)` ->
  logits `(B,H,W,C,K)`, with its `Network` record as `model.pixelrnn`.

  With `config.num_classes`, its input is `{"images": uint8 (B,H,W,C), "labels":
  int32 (B,)}` (see `network_inputs`). The model is named `name` (default:
  `config.model`); nothing reads the name.
  """
  images = keras.Input(config.image_shape, dtype="uint8", name="images")
  scale = scale_layer(config.num_levels)
  x = scale(images)
  if config.num_classes:
    labels = keras.Input((), dtype="int32", name="labels")
    logits, parts = family.network(x, config, images, labels)
    model = keras.Model({"images": images, "labels": labels}, logits,
                        name=name or config.model)
  else:
    logits, parts = family.network(x, config, images, None)
    model = keras.Model(images, logits, name=name or config.model)
  # A plain record: Keras tracks neither it nor the layers in it a second time, so
  # the checkpoint and `.weights.h5` layouts are those of the model's graph alone.
  model.pixelrnn = Network(family, config, parts, scale)
  return model


def is_conditional(model):
  """Whether the network `model` takes class labels."""
  return isinstance(model.input, dict)


def network_inputs(model, images, labels=None):
  """What `model` takes: `images`, or `{"images", "labels"}` if it is conditional.

  Raises:
    ValueError: labels missing for a conditional model, or given to another one.
  """
  if not is_conditional(model):
    if labels is not None:
      raise ValueError(f"Model {model.name!r} is unconditional; it takes no labels.")
    return images
  if labels is None:
    raise ValueError(f"Model {model.name!r} is class-conditional: pass `labels`, "
                     "int32 (B,), one class per image.")
  # Keras takes a dict of tensors only, never tensors mixed with arrays.
  return {"images": keras.ops.convert_to_tensor(images),
          "labels": keras.ops.convert_to_tensor(labels, "int32")}


def maps_of(model, inputs, tensors):
  """The float32 values of `model`'s symbolic `tensors` (a list) for `inputs`
  (what `model` takes), computed by one pass of the layers that lead to them."""
  maps = keras.Model(model.input, tensors)(inputs, training=False)
  return [tf.cast(x, tf.float32) for x in tf.nest.flatten(maps)]
