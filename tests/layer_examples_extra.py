"""Contract-test examples for layer types defined outside ``fnn.layers`` (conv, pooling, ...).

Maps a layer type to a list of ``(layer, input_shape, context)``.
"""

import numpy as np

import fnn
from fnn.layers import Context

EXAMPLES: dict = {}

# convolution, pooling, reshaping, dropout, normalisation (issue 8); run through the contract in tests/test_conv.py
EXAMPLES.update({
    fnn.Conv2D: [(fnn.conv2d(0, 2, 3, 3, dtype=np.float64), (2, 5, 6, 2), Context()),
                 (fnn.conv2d(1, 1, 2, (2, 3), 2, 1, dtype=np.float64), (3, 7, 6, 1), Context())],
    fnn.MaxPool2D: [(fnn.MaxPool2D(2), (2, 4, 5, 3), Context()), (fnn.MaxPool2D(3, 2), (1, 7, 7, 2), Context())],
    fnn.AvgPool2D: [(fnn.AvgPool2D(2), (2, 4, 5, 3), Context()), (fnn.AvgPool2D(3, 1), (1, 4, 4, 2), Context())],
    fnn.Flatten: [(fnn.Flatten(), (2, 3, 4, 2), Context())],
    fnn.Reshape: [(fnn.Reshape((2, -1)), (3, 8), Context())],
    fnn.Dropout: [(fnn.Dropout(0.5), (4, 6), Context()), (fnn.Dropout(0.3), (4, 6), Context(True, fnn.random.key(0)))],
    fnn.LayerNorm: [(fnn.layer_norm(6, dtype=np.float64), (4, 6), Context())],
    fnn.RandomFlip: [(fnn.RandomFlip(), (4, 3, 5, 2), Context()),
                     (fnn.RandomFlip(0.7), (6, 2, 3, 1), Context(True, fnn.random.key(1)))],
    fnn.BatchNorm: [(fnn.batch_norm(3, dtype=np.float64), (5, 3), Context(True, None)),
                    (fnn.batch_norm(2, dtype=np.float64), (2, 3, 3, 2), Context())],
})

# sequence layers (issue 17): run through the contract in tests/test_layers.py (test_sequence_layer_contract);
# an Embedding's input is integer ids drawn below the vocabulary size
EXAMPLES.update({
    fnn.Embedding: [(fnn.embedding(0, 7, 3, dtype=np.float64), (4, 5), Context())],
    fnn.PositionalEmbedding: [(fnn.positional_embedding(0, 6, 3, dtype=np.float64), (2, 4, 3), Context())],
    fnn.RNN: [(fnn.rnn(0, 3, 4, dtype=np.float64), (2, 5, 3), Context())],
    fnn.LSTM: [(fnn.lstm(0, 3, 4, dtype=np.float64), (2, 5, 3), Context())],
    fnn.GRU: [(fnn.gru(0, 3, 4, dtype=np.float64), (2, 5, 3), Context())],
    fnn.Last: [(fnn.Last(), (2, 5, 3), Context())],
    fnn.MultiHeadAttention: [(fnn.attention(0, 6, 2, dtype=np.float64), (2, 5, 6), Context()),
                             (fnn.attention(1, 4, 1, causal=False, dtype=np.float64), (3, 2, 4), Context())],
    fnn.Residual: [(fnn.Residual((fnn.layer_norm(4, dtype=np.float64), fnn.attention(0, 4, 2, dtype=np.float64))),
                    (2, 3, 4), Context()),
                   (fnn.Residual((fnn.dense(0, 4, 6, dtype=np.float64), fnn.GELU(), fnn.Dropout(0.5),
                                  fnn.dense(1, 6, 4, dtype=np.float64))), (2, 3, 4), Context(True, fnn.random.key(0)))],
})
