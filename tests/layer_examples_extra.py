"""Contract-test examples for layer types defined outside ``fnn.layers`` (conv, pooling, ...).

Maps a layer type to a list of ``(layer, input_shape, context)``.
"""

EXAMPLES: dict = {}
